//! Which paths a coordinator accepts.
//!
//! The same path must mean the same record in every backend, and on the filesystem it becomes a
//! file name: so a path is absolute, its components are non-empty, never `.` or `..`, and use a
//! conservative character set (what Codis' paths use: product names, `slot-0001`, proxy tokens).

use crate::Error;

/// Checks `path`.
pub fn check(path: &str) -> Result<(), Error> {
    let invalid = |reason| Err(Error::InvalidPath { path: path.to_string(), reason });
    let Some(rest) = path.strip_prefix('/') else {
        return invalid("must start with '/'");
    };
    if rest.is_empty() {
        return invalid("the root holds no record");
    }
    if path.len() > 1024 {
        return invalid("longer than 1024 bytes");
    }
    for component in rest.split('/') {
        if component.is_empty() {
            return invalid("empty component (a doubled or trailing '/')");
        }
        if component == "." || component == ".." {
            return invalid("'.' and '..' are not allowed");
        }
        if !component.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"_.-:@,=+".contains(&byte)) {
            return invalid("use letters, digits and _ . - : @ , = +");
        }
    }
    Ok(())
}

/// The name of `path`'s direct child of `dir` (`dir` = `/a`, `path` = `/a/b/c` → `b`), if `path`
/// is below `dir`.
pub fn child_of<'a>(dir: &str, path: &'a str) -> Option<&'a str> {
    let rest = path.strip_prefix(dir)?.strip_prefix('/')?;
    rest.split('/').next().filter(|name| !name.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_absolute_and_tame() {
        for good in ["/codis3/demo/topom", "/codis3/demo/slots/slot-0001", "/jodis/demo/proxy-ab12", "/a"] {
            assert_eq!(check(good), Ok(()), "{good}");
        }
        for bad in ["", "/", "a/b", "/a//b", "/a/", "/a/../b", "/a/./b", "/a b", "/a/b\n", "/ü"] {
            assert!(check(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn children_are_direct() {
        assert_eq!(child_of("/a", "/a/b/c"), Some("b"));
        assert_eq!(child_of("/a", "/a/b"), Some("b"));
        assert_eq!(child_of("/a", "/ab/c"), None);
        assert_eq!(child_of("/a", "/a"), None);
    }
}
