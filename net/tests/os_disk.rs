//! The production disk on the machine's file system: the operations durability relies on.

use net::{Disk, DiskFile, OsDisk};

#[tokio::test]
async fn files_are_appended_replaced_atomically_truncated_and_removed() {
    let dir = std::env::temp_dir().join(format!("codis-os-disk-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
    let disk = OsDisk;
    assert_eq!(disk.read(&path("absent")).await.expect("read"), None);
    let mut log = disk.append(&path("log")).await.expect("open");
    log.write_all(b"one;").await.expect("write");
    log.sync().await.expect("sync");
    drop(log);
    let mut log = disk.append(&path("log")).await.expect("reopen");
    log.write_all(b"two;").await.expect("write");
    log.sync().await.expect("sync");
    assert_eq!(disk.read(&path("log")).await.expect("read").as_deref(), Some(&b"one;two;"[..]));
    disk.truncate(&path("log"), 4).await.expect("truncate");
    assert_eq!(disk.read(&path("log")).await.expect("read").as_deref(), Some(&b"one;"[..]));
    let mut snapshot = disk.create(&path("log.tmp")).await.expect("create");
    snapshot.write_all(b"new").await.expect("write");
    snapshot.sync().await.expect("sync");
    disk.rename(&path("log.tmp"), &path("log")).await.expect("rename");
    assert_eq!(disk.read(&path("log")).await.expect("read").as_deref(), Some(&b"new"[..]));
    assert_eq!(disk.read(&path("log.tmp")).await.expect("read"), None);
    disk.remove(&path("log")).await.expect("remove");
    disk.remove(&path("log")).await.expect("removing an absent file is fine");
    assert_eq!(disk.read(&path("log")).await.expect("read"), None);
    // Big writes (a snapshot) take another path than small ones (a log's commands).
    let big: Vec<u8> = (0..3_000_000u32).map(|index| index as u8).collect();
    let mut snapshot = disk.create(&path("big")).await.expect("create");
    snapshot.write_all(b"head;").await.expect("write");
    snapshot.write_all(&big).await.expect("write");
    snapshot.sync().await.expect("sync");
    let read = disk.read(&path("big")).await.expect("read").expect("the file");
    assert_eq!((&read[..5], &read[5..]), (&b"head;"[..], &big[..]));
    // Directories, nested and existing.
    disk.create_dir(&path("a/b")).await.expect("mkdir");
    disk.create_dir(&path("a/b")).await.expect("an existing directory is fine");
    assert!(dir.join("a/b").is_dir());
    std::fs::remove_dir_all(&dir).expect("clean up");
}
