//! Writes `data/*.json` from a running redis-server 7.0: its `COMMAND INFO` and `COMMAND DOCS`
//! are the reference our replies must match, so the table is read from it rather than typed.
//!
//! ```text
//! redis-server --port 27999 --save '' &
//! cargo run -p commands --example regen -- 127.0.0.1:27999   # or: just commands-regen
//! ```
//!
//! What Redis does not show (`hidden_flags`, `get_keys`, `proxy`) is kept from the existing file;
//! files for commands Redis does not have (Codis' `SLOTS*`) are left alone. A command new to
//! the data gets the proxy route its flags suggest, to be checked by hand.

#![allow(clippy::disallowed_types, reason = "a developer's tool reading a local redis-server; no component runs it")]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};

use bytes::BytesMut;
use commands::schema::{ArgFile, BeginSearch, CommandFile, DocsFile, FindKeys, KeySpecFile};
use resp::{Decoder, Frame, Limits};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    let address = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:6379".into());
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    let mut connection = Client { stream: TcpStream::connect(&address)?, buffer: BytesMut::new() };
    let hello = connection.call(&["HELLO", "3"])?;
    let version = pairs(&hello)?
        .iter()
        .find(|(key, _)| text(key).is_ok_and(|key| key == "version"))
        .map(|(_, value)| text(value))
        .transpose()?
        .unwrap_or_default();
    if !version.starts_with("7.0.") {
        return Err(format!("{address} runs Redis {version}; the table follows 7.0").into());
    }
    let infos = connection.call(&["COMMAND", "INFO"])?;
    let docs = connection.call(&["COMMAND", "DOCS"])?;
    let docs = pairs(&docs)?;
    let mut written = 0;
    for info in items(&infos)? {
        let name = text(&items(info)?[0])?;
        let command_docs = docs.iter().find(|(key, _)| text(key).is_ok_and(|key| key == name)).map(|(_, docs)| docs);
        for file in command_files(info, command_docs, None)? {
            write_file(&data, file)?;
            written += 1;
        }
    }
    println!("wrote {written} files in {}", data.display());
    Ok(())
}

/// The file of a command and those of its subcommands.
fn command_files(info: &Frame, docs: Option<&Frame>, container: Option<&str>) -> Result<Vec<CommandFile>> {
    let fields = items(info)?;
    let [name, arity, flags, first, last, step, acl, tips, key_specs, subcommands] = fields else {
        return Err(format!("COMMAND INFO entry with {} fields", fields.len()).into());
    };
    let name = text(name)?;
    let docs = docs.ok_or_else(|| format!("no COMMAND DOCS for {name}"))?;
    let doc_pairs = pairs(docs)?;
    let doc_field = |field: &str| doc_pairs.iter().find(|(key, _)| text(key).is_ok_and(|key| key == field));
    let mut files = vec![CommandFile {
        name: name.clone(),
        container: container.map(str::to_string),
        arity: i32::try_from(integer(arity)?)?,
        flags: texts(flags)?,
        hidden_flags: Vec::new(),
        first_key: i32::try_from(integer(first)?)?,
        last_key: i32::try_from(integer(last)?)?,
        step: i32::try_from(integer(step)?)?,
        acl_categories: texts(acl)?,
        tips: texts(tips)?,
        key_specs: items(key_specs)?.iter().map(key_spec).collect::<Result<_>>()?,
        get_keys: None,
        docs: docs_file(&doc_pairs)?,
        proxy: None,
        proxy_key: None,
    }];
    let sub_docs = doc_field("subcommands").map(|(_, value)| pairs(value)).transpose()?.unwrap_or_default();
    for sub in items(subcommands)? {
        let sub_name = text(&items(sub)?[0])?;
        let docs = sub_docs.iter().find(|(key, _)| text(key).is_ok_and(|key| key == sub_name)).map(|(_, docs)| docs);
        files.extend(command_files(sub, docs, Some(&name))?);
    }
    Ok(files)
}

fn key_spec(frame: &Frame) -> Result<KeySpecFile> {
    let fields = pairs(frame)?;
    let field = |name: &str| {
        fields
            .iter()
            .find(|(key, _)| text(key).is_ok_and(|key| key == name))
            .map(|(_, value)| value)
            .ok_or_else(|| format!("key spec without {name}"))
    };
    let typed = |frame: &Frame| -> Result<(String, Vec<(Frame, Frame)>)> {
        let fields = pairs(frame)?;
        let kind = fields.iter().find(|(key, _)| text(key).is_ok_and(|key| key == "type")).ok_or("no type")?;
        let spec = fields.iter().find(|(key, _)| text(key).is_ok_and(|key| key == "spec")).ok_or("no spec")?;
        Ok((text(&kind.1)?, pairs(&spec.1)?))
    };
    let number = |spec: &[(Frame, Frame)], name: &str| -> Result<i64> {
        let (_, value) =
            spec.iter().find(|(key, _)| text(key).is_ok_and(|key| key == name)).ok_or_else(|| format!("no {name}"))?;
        integer(value)
    };
    let (begin_kind, begin) = typed(field("begin_search")?)?;
    let begin_search = match begin_kind.as_str() {
        "index" => BeginSearch::Index { index: number(&begin, "index")? },
        "keyword" => {
            let keyword = begin.iter().find(|(key, _)| text(key).is_ok_and(|key| key == "keyword")).ok_or("keyword")?;
            BeginSearch::Keyword { keyword: text(&keyword.1)?, startfrom: number(&begin, "startfrom")? }
        }
        "unknown" => BeginSearch::Unknown {},
        other => return Err(format!("begin_search type {other}").into()),
    };
    let (find_kind, find) = typed(field("find_keys")?)?;
    let find_keys = match find_kind.as_str() {
        "range" => FindKeys::Range {
            lastkey: number(&find, "lastkey")?,
            keystep: number(&find, "keystep")?,
            limit: number(&find, "limit")?,
        },
        "keynum" => FindKeys::Keynum {
            keynumidx: number(&find, "keynumidx")?,
            firstkey: number(&find, "firstkey")?,
            keystep: number(&find, "keystep")?,
        },
        "unknown" => FindKeys::Unknown {},
        other => return Err(format!("find_keys type {other}").into()),
    };
    let notes = field("notes").ok().map(text).transpose()?;
    Ok(KeySpecFile { notes, flags: texts(field("flags")?)?, begin_search, find_keys })
}

fn docs_file(fields: &[(Frame, Frame)]) -> Result<DocsFile> {
    let mut docs = DocsFile::default();
    for (key, value) in fields {
        match text(key)?.as_str() {
            "summary" => docs.summary = Some(text(value)?),
            "since" => docs.since = Some(text(value)?),
            "group" => docs.group = text(value)?,
            "complexity" => docs.complexity = Some(text(value)?),
            "doc_flags" => docs.doc_flags = Some(texts(value)?),
            "deprecated_since" => docs.deprecated_since = Some(text(value)?),
            "replaced_by" => docs.replaced_by = Some(text(value)?),
            "history" => {
                let history = items(value)?
                    .iter()
                    .map(|entry| {
                        let pair = items(entry)?;
                        Ok((text(&pair[0])?, text(&pair[1])?))
                    })
                    .collect::<Result<_>>()?;
                docs.history = Some(history);
            }
            "arguments" => docs.arguments = Some(items(value)?.iter().map(argument).collect::<Result<_>>()?),
            "subcommands" => {}
            other => return Err(format!("unknown docs field {other}").into()),
        }
    }
    Ok(docs)
}

fn argument(frame: &Frame) -> Result<ArgFile> {
    let mut arg = ArgFile {
        name: String::new(),
        kind: String::new(),
        key_spec_index: None,
        token: None,
        summary: None,
        since: None,
        deprecated_since: None,
        flags: None,
        arguments: None,
    };
    for (key, value) in pairs(frame)? {
        match text(&key)?.as_str() {
            "name" => arg.name = text(&value)?,
            "type" => arg.kind = text(&value)?,
            "key_spec_index" => arg.key_spec_index = Some(integer(&value)?),
            "token" => arg.token = Some(text(&value)?),
            "summary" => arg.summary = Some(text(&value)?),
            "since" => arg.since = Some(text(&value)?),
            "deprecated_since" => arg.deprecated_since = Some(text(&value)?),
            "flags" => arg.flags = Some(texts(&value)?),
            "arguments" => arg.arguments = Some(items(&value)?.iter().map(argument).collect::<Result<_>>()?),
            other => return Err(format!("unknown argument field {other}").into()),
        }
    }
    Ok(arg)
}

/// Writes `file`, keeping what is ours from the file it replaces.
fn write_file(data: &Path, mut file: CommandFile) -> Result<()> {
    let path: PathBuf = data.join(format!("{}.json", file.name.replace('|', "-")));
    if let Ok(old) = std::fs::read_to_string(&path) {
        let old: CommandFile = serde_json::from_str(&old).map_err(|error| format!("{}: {error}", path.display()))?;
        file.hidden_flags = old.hidden_flags;
        file.get_keys = old.get_keys;
        file.proxy = old.proxy;
        file.proxy_key = old.proxy_key;
    } else if file.container.is_none() {
        file.proxy = Some(suggested_route(&file).into());
    }
    let mut text = serde_json::to_string_pretty(&file)?;
    text.push('\n');
    std::fs::write(&path, text)?;
    Ok(())
}

/// Codis' default for a command it does not list: forwarded to the master by its first key.
fn suggested_route(file: &CommandFile) -> &'static str {
    if file.flags.iter().any(|flag| flag == "write") {
        "write"
    } else if file.flags.iter().any(|flag| flag == "readonly") && !file.key_specs.is_empty() {
        "read"
    } else {
        "forward"
    }
}

struct Client {
    stream: TcpStream,
    buffer: BytesMut,
}

impl Client {
    fn call(&mut self, args: &[&str]) -> Result<Frame> {
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        self.stream.write_all(request.as_bytes())?;
        let mut decoder = Decoder::new(Limits::default());
        loop {
            if let Some(frame) = decoder.decode(&mut self.buffer)? {
                return Ok(frame);
            }
            let mut chunk = [0u8; 65536];
            let read = self.stream.read(&mut chunk)?;
            if read == 0 {
                return Err("connection closed".into());
            }
            self.buffer.extend_from_slice(&chunk[..read]);
        }
    }
}

fn text(frame: &Frame) -> Result<String> {
    match frame {
        Frame::Bulk(bytes) | Frame::Simple(bytes) => Ok(String::from_utf8(bytes.to_vec())?),
        other => Err(format!("expected a string, got {other:?}").into()),
    }
}

fn integer(frame: &Frame) -> Result<i64> {
    match frame {
        Frame::Integer(value) => Ok(*value),
        other => Err(format!("expected an integer, got {other:?}").into()),
    }
}

fn items(frame: &Frame) -> Result<&[Frame]> {
    match frame {
        Frame::Array(items) | Frame::Set(items) => Ok(items),
        other => Err(format!("expected an array, got {other:?}").into()),
    }
}

fn texts(frame: &Frame) -> Result<Vec<String>> {
    items(frame)?.iter().map(text).collect()
}

fn pairs(frame: &Frame) -> Result<Vec<(Frame, Frame)>> {
    match frame {
        Frame::Map(pairs) => Ok(pairs.clone()),
        other => Err(format!("expected a map, got {other:?}").into()),
    }
}
