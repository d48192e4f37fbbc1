//! Command errors, worded exactly as Redis 7.0 words them.

use std::borrow::Cow;

/// Why a command was refused. The `Display` text is the error reply, code first.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CmdError {
    /// The key holds another type.
    #[error("WRONGTYPE Operation against a key holding the wrong kind of value")]
    WrongType,
    /// Options that do not parse or do not go together.
    #[error("ERR syntax error")]
    Syntax,
    /// An argument (or a stored value) that should be a 64-bit integer is not.
    #[error("ERR value is not an integer or out of range")]
    NotInteger,
    /// An argument (or a stored value) that should be a float is not.
    #[error("ERR value is not a valid float")]
    NotFloat,
    /// The command has the wrong number of arguments.
    #[error("ERR wrong number of arguments for '{0}' command")]
    Arity(String),
    /// No such command.
    #[error("ERR unknown command '{name}', with args beginning with: {args}")]
    UnknownCommand {
        /// The name as sent.
        name: String,
        /// The first arguments, each quoted and followed by a space.
        args: String,
    },
    /// An unknown subcommand (`CLIENT FOO`).
    #[error("ERR unknown subcommand '{sub}'. Try {command} HELP.")]
    UnknownSubcommand {
        /// The subcommand as sent.
        sub: String,
        /// The container command, upper case.
        command: String,
    },
    /// `SELECT`, `MOVE`, `SWAPDB` … to a database that does not exist.
    #[error("ERR DB index is out of range")]
    DbIndexOutOfRange,
    /// A command needs a key that does not exist (`RENAME`).
    #[error("ERR no such key")]
    NoSuchKey,
    /// The client must authenticate first.
    #[error("NOAUTH Authentication required.")]
    NoAuth,
    /// Any other error, text given whole (code included).
    #[error("{0}")]
    Other(Cow<'static, str>),
}

impl CmdError {
    /// An error with a fixed text (code included).
    pub fn other(text: &'static str) -> CmdError {
        CmdError::Other(Cow::Borrowed(text))
    }

    /// An error with a built text (code included).
    pub fn message(text: String) -> CmdError {
        CmdError::Other(Cow::Owned(text))
    }

    /// The arity error for `name` (lower case, as Redis reports it).
    pub fn arity(name: &[u8]) -> CmdError {
        CmdError::Arity(String::from_utf8_lossy(name).to_ascii_lowercase())
    }

    /// The unknown-command error for a request, quoting its first arguments as Redis does.
    pub fn unknown_command(name: &[u8], args: &[&[u8]]) -> CmdError {
        // Redis quotes each argument truncated to 128 bytes, up to 128 bytes of arguments.
        let mut quoted = String::new();
        for arg in args {
            if quoted.len() >= 128 {
                break;
            }
            let shown = &arg[..arg.len().min(128)];
            quoted.push('\'');
            quoted.push_str(&String::from_utf8_lossy(shown));
            quoted.push_str("' ");
        }
        let shown = &name[..name.len().min(128)];
        CmdError::UnknownCommand { name: String::from_utf8_lossy(shown).into_owned(), args: quoted }
    }
}

/// What a command handler returns: `Ok` once it wrote its reply, or the error to reply with.
pub type CmdResult = Result<(), CmdError>;
