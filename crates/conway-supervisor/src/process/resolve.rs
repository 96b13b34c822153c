//! Finding the program of a command before starting it, so that a command that does not
//! exist is reported as such, with where it was looked for.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Why a command cannot be started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// The command line is empty.
    #[error("the command is empty")]
    Empty,
    /// The folder to run in does not exist.
    #[error("the working folder {} does not exist", .0.display())]
    NoWorkdir(PathBuf),
    /// A program given by path is not there.
    #[error("command {program:?} not found: {} does not exist", path.display())]
    NoFile {
        /// As written.
        program: String,
        /// Where it was looked for.
        path: PathBuf,
    },
    /// A program given by name is in no folder of `PATH`.
    #[error("command {program:?} not found in PATH")]
    NotInPath {
        /// As written.
        program: String,
        /// The `PATH` searched.
        path: String,
    },
    /// The file exists but is not an executable file.
    #[error("command {program:?} is not executable: {}", path.display())]
    NotExecutable {
        /// As written.
        program: String,
        /// The file.
        path: PathBuf,
    },
}

/// The file that `program` names, as a shell would find it from `workdir`: a name with
/// a `/` relative to `workdir` (or absolute), any other name in `path`'s folders.
pub fn resolve(
    program: &str,
    workdir: &Path,
    path: Option<&OsStr>,
) -> Result<PathBuf, ResolveError> {
    if program.is_empty() {
        return Err(ResolveError::Empty);
    }
    if !workdir.is_dir() {
        return Err(ResolveError::NoWorkdir(workdir.to_owned()));
    }
    if program.contains('/') {
        let file = workdir.join(program);
        return match executable(&file) {
            Some(true) => Ok(file),
            Some(false) => Err(ResolveError::NotExecutable {
                program: program.to_owned(),
                path: file,
            }),
            None => Err(ResolveError::NoFile {
                program: program.to_owned(),
                path: file,
            }),
        };
    }
    let mut found_not_executable = None;
    for folder in std::env::split_paths(path.unwrap_or_default()) {
        let file = workdir.join(folder).join(program);
        match executable(&file) {
            Some(true) => return Ok(file),
            Some(false) => {
                found_not_executable.get_or_insert(file);
            }
            None => {}
        }
    }
    Err(match found_not_executable {
        Some(file) => ResolveError::NotExecutable {
            program: program.to_owned(),
            path: file,
        },
        None => ResolveError::NotInPath {
            program: program.to_owned(),
            path: path.unwrap_or_default().to_string_lossy().into_owned(),
        },
    })
}

/// `None` if no file is there; else whether it is an executable file.
fn executable(file: &Path) -> Option<bool> {
    let metadata = std::fs::metadata(file).ok()?;
    Some(metadata.is_file() && metadata.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;

    use super::*;

    #[test]
    fn finds_names_in_path_and_paths_in_the_workdir() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let tool = bin.join("tool");
        std::fs::write(&tool, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = OsString::from(format!("/nonexistent:{}", bin.display()));
        assert_eq!(resolve("tool", dir.path(), Some(&path)), Ok(tool.clone()));
        assert_eq!(resolve("bin/tool", dir.path(), None), Ok(tool.clone()));
        assert_eq!(
            resolve("./bin/tool", dir.path(), None),
            Ok(dir.path().join("./bin/tool"))
        );
        // A relative PATH entry is relative to the workdir.
        assert_eq!(
            resolve("tool", dir.path(), Some(OsStr::new("bin"))),
            Ok(dir.path().join("bin/tool"))
        );
    }

    #[test]
    fn says_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data.txt");
        std::fs::write(&data, "x").unwrap();
        let path = OsString::from("/nonexistent");
        assert_eq!(
            resolve("no-such-command", dir.path(), Some(&path))
                .unwrap_err()
                .to_string(),
            "command \"no-such-command\" not found in PATH"
        );
        assert!(matches!(
            resolve("./missing", dir.path(), None),
            Err(ResolveError::NoFile { .. })
        ));
        assert!(matches!(
            resolve("./data.txt", dir.path(), None),
            Err(ResolveError::NotExecutable { .. })
        ));
        assert_eq!(resolve("", dir.path(), None), Err(ResolveError::Empty));
        assert!(matches!(
            resolve("sh", &dir.path().join("gone"), None),
            Err(ResolveError::NoWorkdir(_))
        ));
    }
}
