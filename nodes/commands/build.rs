//! Joins `data/*.json` (one command or subcommand per file, as Valkey keeps them) into one JSON
//! array that the crate embeds: adding a command is adding a file, and nothing else has to list it.

use std::fmt::Write as _;
use std::path::PathBuf;

fn main() {
    let data = PathBuf::from("data");
    println!("cargo:rerun-if-changed=data");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&data)
        .expect("nodes/commands/data is readable")
        .map(|entry| entry.expect("a readable directory entry").path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "json"))
        .collect();
    // Sorted, so the table's order (and every reply that lists it) is the same on every machine.
    files.sort();
    let mut joined = String::from("[\n");
    for (index, path) in files.iter().enumerate() {
        println!("cargo:rerun-if-changed={}", path.display());
        let text = std::fs::read_to_string(path).expect("a readable command file");
        if index > 0 {
            joined.push_str(",\n");
        }
        // The file's name travels with its text, so a parse error names the file.
        let name = path.file_name().and_then(|name| name.to_str()).expect("a UTF-8 file name");
        write!(joined, "[{:?}, {}]", name, text.trim()).expect("writing to a String");
    }
    joined.push_str("\n]\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("commands.json");
    std::fs::write(out, joined).expect("OUT_DIR is writable");
}
