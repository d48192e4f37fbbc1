//! The log's manifest: which files make up the log, in Redis 7's format, so either server can
//! load the other's directory.
//!
//! One line per file: `file <name> seq <n> type <b|h|i>`: the base (a snapshot, or commands),
//! the increments appended since in sequence order, and history files a rewrite replaced and
//! that are about to be deleted. The manifest is replaced whole, by rename, so the log is
//! always exactly one consistent set of files.

use std::fmt::Write as _;

/// One file of the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogFile {
    /// Its name in the log's directory.
    pub name: String,
    /// Its sequence number (bases and increments count separately).
    pub seq: u64,
}

/// The files of the log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    /// The base the increments apply to (none only in a log started without data).
    pub base: Option<LogFile>,
    /// The increments, oldest first.
    pub incrs: Vec<LogFile>,
}

/// Why a manifest cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("line {line}: {why}")]
pub struct ManifestError {
    /// The 1-based line.
    pub line: usize,
    /// What is wrong.
    pub why: &'static str,
}

impl Manifest {
    /// Reads a manifest; history files are ignored (they are no longer part of the log).
    pub fn parse(text: &str) -> Result<Manifest, ManifestError> {
        let mut manifest = Manifest::default();
        for (index, line) in text.lines().enumerate() {
            let fail = |why| ManifestError { line: index + 1, why };
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let words: Vec<&str> = line.split_whitespace().collect();
            if !words.len().is_multiple_of(2) {
                return Err(fail("expected `key value` pairs"));
            }
            let (mut name, mut seq, mut kind) = (None, None, None);
            for pair in words.chunks(2) {
                match pair[0] {
                    "file" => name = Some(unquote(pair[1]).ok_or_else(|| fail("a quoted file name"))?),
                    "seq" => seq = Some(pair[1].parse::<u64>().map_err(|_| fail("seq is not a number"))?),
                    "type" => kind = Some(pair[1]),
                    // Fields a later version may add.
                    _ => {}
                }
            }
            let (Some(name), Some(seq), Some(kind)) = (name, seq, kind) else {
                return Err(fail("a line needs file, seq and type"));
            };
            if name.contains('/') {
                return Err(fail("a file name with a path"));
            }
            let file = LogFile { name, seq };
            match kind {
                "b" if manifest.base.is_some() => return Err(fail("two base files")),
                "b" => manifest.base = Some(file),
                "i" => {
                    if manifest.incrs.last().is_some_and(|last| last.seq >= file.seq) {
                        return Err(fail("increments out of order"));
                    }
                    manifest.incrs.push(file);
                }
                "h" => {}
                _ => return Err(fail("unknown file type")),
            }
        }
        Ok(manifest)
    }

    /// The manifest's text.
    pub fn render(&self) -> String {
        let mut text = String::new();
        if let Some(base) = &self.base {
            let _ = writeln!(text, "file {} seq {} type b", base.name, base.seq);
        }
        for incr in &self.incrs {
            let _ = writeln!(text, "file {} seq {} type i", incr.name, incr.seq);
        }
        text
    }
}

/// A file name as Redis writes it: bare, or double-quoted (we never write quoted names, since
/// `appendfilename` may not hold spaces or quotes, but accept simple ones).
fn unquote(word: &str) -> Option<String> {
    match word.strip_prefix('"') {
        Some(rest) => rest.strip_suffix('"').filter(|inner| !inner.contains(['"', '\\'])).map(str::to_string),
        None => Some(word.to_string()),
    }
}

/// The name of base number `seq` (a snapshot) for log `name`.
pub fn base_name(name: &str, seq: u64) -> String {
    format!("{name}.{seq}.base.rdb")
}

/// The name of increment number `seq` for log `name`.
pub fn incr_name(name: &str, seq: u64) -> String {
    format!("{name}.{seq}.incr.aof")
}

/// The manifest's name for log `name`.
pub fn manifest_name(name: &str) -> String {
    format!("{name}.manifest")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_manifests_read_and_ours_render_the_same() {
        let text = "file appendonly.aof.2.base.rdb seq 2 type b\nfile appendonly.aof.2.incr.aof seq 2 type i\n";
        let manifest = Manifest::parse(text).unwrap();
        assert_eq!(manifest.base, Some(LogFile { name: "appendonly.aof.2.base.rdb".into(), seq: 2 }));
        assert_eq!(manifest.incrs, vec![LogFile { name: "appendonly.aof.2.incr.aof".into(), seq: 2 }]);
        assert_eq!(manifest.render(), text);
        let history =
            "file a.1.base.rdb seq 1 type h\nfile a.2.base.rdb seq 2 type b\nfile a.1.incr.aof seq 1 type h\n";
        assert_eq!(Manifest::parse(history).unwrap().base.unwrap().seq, 2);
    }

    #[test]
    fn a_damaged_manifest_says_where() {
        assert_eq!(Manifest::parse("file x seq 1 type b\nfile y seq 1\n").unwrap_err().line, 2);
        assert!(Manifest::parse("file a seq 1 type b\nfile b seq 2 type b\n").is_err());
        assert!(Manifest::parse("file a seq 2 type i\nfile b seq 1 type i\n").is_err());
        assert!(Manifest::parse("file ../etc/passwd seq 1 type i\n").is_err());
        assert!(Manifest::parse("file a seq x type i\n").is_err());
    }
}
