//! Crash-safe, self-describing output directories (`eval`, `scenario`).
//!
//! A run owns its directory through a manifest, [`MANIFEST`] (`.microreboot-run.json`): which
//! command wrote it, the commit and configuration hash, whether the run is `running` or
//! `complete`, and every file it has placed there. The rules, and why:
//!
//! * **Every file appears whole or not at all.** It is written to a temporary name in the same
//!   directory (`.microreboot-tmp.<name>`, so the extension a plot backend looks at is kept),
//!   fsynced, listed in the manifest, then renamed over its final name. A SIGKILL leaves at most
//!   a temporary file, which the next run removes — never a truncated `results.jsonl`.
//! * **The manifest lists a file before the file exists**, so whatever a killed run left behind
//!   is known to the next one and can be removed: a rerun never leaves an older run's plots
//!   beside its own.
//! * **Completion is one rename.** The last file (`REPORT.md` for `eval`) is staged, the manifest
//!   is rewritten as `complete`, and only then is the last file renamed into place. So
//!   `REPORT.md` exists only beside a complete run. (A kill between the two renames leaves a
//!   complete manifest without its last file; the next run reports that as interrupted.)
//! * **A directory the tool did not create is not touched**: a non-empty directory without a
//!   manifest is refused unless the user passes `--force`, which empties it (but never a
//!   directory holding `.git`, and never a nested run directory with its own manifest, such as
//!   `reports/out/scenario` inside `reports/out`).
//! * **A rerun starts clean**: the previous run's listed files are removed first (`REPORT.md`
//!   before the rest, so the directory stops claiming a complete report at once), and a previous
//!   run that never completed is reported.
//!
//! The manifest's timestamps are wall-clock UTC and informative only; nothing deterministic
//! depends on them.

use serde::{Deserialize, Serialize};
use std::io::Write as _;
use std::path::{Component, Path, PathBuf};

/// The manifest's file name.
pub const MANIFEST: &str = ".microreboot-run.json";

/// Prefix of temporary files; anything starting with it is a leftover of an interrupted write.
pub const TMP_PREFIX: &str = ".microreboot-tmp.";

/// The manifest format version.
const FORMAT: u32 = 1;

/// Whether a run finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Started and not (yet) finished: if no process is writing, it was interrupted.
    Running,
    /// Every file was written; the last one is in place or about to be.
    Complete,
}

/// The contents of [`MANIFEST`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Manifest format version.
    pub format: u32,
    /// The command that wrote the directory (`eval`, `scenario`).
    pub command: String,
    /// Whether the run finished.
    pub status: Status,
    /// Commit of the build that wrote it.
    pub commit: String,
    /// Hash of the run's configuration.
    pub config_hash: String,
    /// When the run started (UTC, wall clock).
    pub started: String,
    /// When the manifest was last written (UTC, wall clock).
    pub updated: String,
    /// What the run was doing when the manifest was last written.
    pub stage: String,
    /// Every file the run has placed (or was about to place), relative, `/`-separated, in order.
    pub files: Vec<String>,
}

impl Manifest {
    /// One line naming the run, for messages.
    pub fn describe(&self) -> String {
        format!(
            "{} run of commit {} with configuration {}, started {}",
            self.command, self.commit, self.config_hash, self.started
        )
    }
}

/// An output directory could not be prepared or written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// A file-system operation failed.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done (`create output directory`, `write`, `rename`…).
        action: &'static str,
        /// The path.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The directory holds files of something else.
    #[error(
        "output directory {dir} is not empty ({entries}) and has no {MANIFEST}{why}, so microreboot did not \
         write it; refusing to mix runs: choose another --out, or pass --force to delete its contents first"
    )]
    NotOurs {
        /// The directory.
        dir: String,
        /// A few of its entries.
        entries: String,
        /// Why the manifest does not count (empty when there is none).
        why: String,
    },
    /// `--force` on a directory that must not be emptied.
    #[error("refusing to empty {dir} with --force: it holds {what}")]
    Protected {
        /// The directory.
        dir: String,
        /// What makes it precious.
        what: String,
    },
    /// A path that would leave the directory.
    #[error("{path}: not a plain relative path inside the output directory")]
    BadPath {
        /// The offending path.
        path: String,
    },
    /// Drawing into a file failed.
    #[error("drawing {path}: {message}")]
    Draw {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> OutputError + 'a {
    move |source| OutputError::Io {
        action,
        path: path.display().to_string(),
        source,
    }
}

/// Wall-clock UTC as `YYYY-MM-DDTHH:MM:SSZ`.
#[allow(clippy::disallowed_methods)] // informative manifest timestamps, never part of results
fn now_utc() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    utc(secs)
}

/// Formats Unix seconds as UTC (the proleptic Gregorian calendar; Howard Hinnant's algorithm).
fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Checks that `rel` stays inside the directory: relative, plain components only.
fn safe_relative(rel: &str) -> Result<&Path, OutputError> {
    let path = Path::new(rel);
    let plain = !rel.is_empty()
        && !rel.contains('\\')
        && path.components().all(|c| matches!(c, Component::Normal(_)));
    if plain {
        Ok(path)
    } else {
        Err(OutputError::BadPath { path: rel.into() })
    }
}

/// The temporary sibling of `path` (same directory, so the rename is atomic; same extension).
fn tmp_sibling(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!("{TMP_PREFIX}{name}"))
}

/// Writes `bytes` to `path` and flushes them to disk.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    let mut file = std::fs::File::create(path).map_err(io("create", path))?;
    file.write_all(bytes).map_err(io("write", path))?;
    file.sync_all().map_err(io("sync", path))
}

/// Flushes a file written by someone else (a plot backend) to disk.
fn sync_file(path: &Path) -> Result<(), OutputError> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(io("sync", path))
}

/// Flushes a directory's entries (the renames) to disk; a no-op where directories cannot be
/// opened as files.
fn sync_dir(dir: &Path) -> Result<(), OutputError> {
    if cfg!(unix) {
        std::fs::File::open(dir)
            .and_then(|f| f.sync_all())
            .map_err(io("sync", dir))?;
    }
    Ok(())
}

fn rename(from: &Path, to: &Path) -> Result<(), OutputError> {
    std::fs::rename(from, to).map_err(io("rename into place", to))
}

/// Removes a file; one that is already gone is fine.
fn remove_file(path: &Path) -> Result<bool, OutputError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io("remove", path)(e)),
    }
}

/// Reads the manifest of `dir`: `Ok(None)` when there is none, `Err(why)` when it is unreadable.
pub fn read_manifest(dir: &Path) -> Result<Option<Manifest>, String> {
    let path = dir.join(MANIFEST);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let m: Manifest =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    if m.format != FORMAT {
        return Err(format!(
            "{}: format {} (this build reads {FORMAT})",
            path.display(),
            m.format
        ));
    }
    for f in &m.files {
        safe_relative(f).map_err(|e| format!("{}: files: {e}", path.display()))?;
    }
    Ok(Some(m))
}

/// Whether `path` is a directory holding a run of its own.
fn is_nested_run(path: &Path) -> bool {
    path.is_dir() && path.join(MANIFEST).is_file()
}

/// Entry names of `dir`, sorted.
fn entries(dir: &Path) -> Result<Vec<String>, OutputError> {
    let mut names = Vec::new();
    for e in std::fs::read_dir(dir).map_err(io("read", dir))? {
        let e = e.map_err(io("read", dir))?;
        names.push(e.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

/// Removes leftovers of interrupted writes in `dir` and its plain subdirectories.
fn remove_tmp_files(dir: &Path) -> Result<usize, OutputError> {
    let mut removed = 0;
    for name in entries(dir)? {
        let path = dir.join(&name);
        if name.starts_with(TMP_PREFIX) {
            removed += usize::from(remove_file(&path)?);
        } else if path.is_dir() && !is_nested_run(&path) {
            for sub in entries(&path)? {
                if sub.starts_with(TMP_PREFIX) {
                    removed += usize::from(remove_file(&path.join(sub))?);
                }
            }
        }
    }
    Ok(removed)
}

/// An output directory this process owns for one run. See the [module documentation](self).
#[derive(Debug)]
pub struct RunDir {
    dir: PathBuf,
    manifest: Manifest,
}

impl RunDir {
    /// Takes `dir` for a run of `command`: creates it, refuses (or with `force` empties) a
    /// directory microreboot did not write, removes the previous run's files, and writes a
    /// `running` manifest. Returns the directory and notes for the user (an interrupted previous
    /// run, what was removed).
    pub fn open(
        dir: &Path,
        command: &str,
        commit: &str,
        config_hash: &str,
        force: bool,
    ) -> Result<(RunDir, Vec<String>), OutputError> {
        std::fs::create_dir_all(dir).map_err(io("create output directory", dir))?;
        let shown = dir.display().to_string();
        let mut notes = Vec::new();
        let previous = read_manifest(dir);
        let foreign: Vec<String> = entries(dir)?
            .into_iter()
            .filter(|n| n != MANIFEST && !n.starts_with(TMP_PREFIX))
            .filter(|n| !is_nested_run(&dir.join(n)))
            .collect();
        let previous = match previous {
            Ok(Some(m)) if !force => Some(m),
            Ok(None) if foreign.is_empty() => None,
            Ok(_) | Err(_) if force => {
                if dir.join(".git").exists() {
                    return Err(OutputError::Protected {
                        dir: shown,
                        what: "a .git repository".into(),
                    });
                }
                for name in &foreign {
                    let path = dir.join(name);
                    if path.is_dir() {
                        std::fs::remove_dir_all(&path).map_err(io("remove", &path))?;
                    } else {
                        remove_file(&path)?;
                    }
                }
                remove_file(&dir.join(MANIFEST))?;
                if !foreign.is_empty() {
                    notes.push(format!(
                        "--force: removed the {} entries of {shown}",
                        foreign.len()
                    ));
                }
                None
            }
            other => {
                let mut shown_entries: Vec<String> = foreign.iter().take(4).cloned().collect();
                if foreign.len() > 4 {
                    shown_entries.push(format!("… {} in all", foreign.len()));
                }
                if shown_entries.is_empty() {
                    shown_entries.push("only its manifest".into());
                }
                return Err(OutputError::NotOurs {
                    dir: shown,
                    entries: shown_entries.join(", "),
                    why: match other {
                        Err(why) => format!(" it can read ({why})"),
                        _ => String::new(),
                    },
                });
            }
        };
        if let Some(old) = &previous {
            let missing: Vec<&String> =
                old.files.iter().filter(|f| !dir.join(f).exists()).collect();
            if old.status == Status::Running {
                notes.push(format!(
                    "the previous run into {shown} ({}) was interrupted at {} while {}; starting clean",
                    old.describe(),
                    old.updated,
                    old.stage
                ));
            } else if let Some(first) = missing.first() {
                notes.push(format!(
                    "the previous run into {shown} ({}) is incomplete ({first} is missing): it was \
                     interrupted while finishing at {}; starting clean",
                    old.describe(),
                    old.updated
                ));
            }
            // REPORT.md (the last file) first: from here on the directory claims no report.
            let mut removed = 0;
            for rel in old.files.iter().rev() {
                removed += usize::from(remove_file(&dir.join(rel))?);
            }
            for rel in &old.files {
                if let Some(parent) = Path::new(rel).parent().filter(|p| *p != Path::new("")) {
                    let parent = dir.join(parent);
                    if parent.is_dir() && entries(&parent)?.is_empty() {
                        std::fs::remove_dir(&parent).map_err(io("remove", &parent))?;
                    }
                }
            }
            if removed > 0 {
                notes.push(format!(
                    "removed the {removed} files of the previous run from {shown}"
                ));
            }
        }
        remove_tmp_files(dir)?;
        let started = now_utc();
        let mut run = RunDir {
            dir: dir.to_path_buf(),
            manifest: Manifest {
                format: FORMAT,
                command: command.into(),
                status: Status::Running,
                commit: commit.into(),
                config_hash: config_hash.into(),
                started: started.clone(),
                updated: started,
                stage: "starting".into(),
                files: Vec::new(),
            },
        };
        run.stage("running the experiments")?;
        sync_dir(dir)?;
        Ok((run, notes))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The manifest as last written.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Records what the run is doing (shown if it is interrupted).
    pub fn stage(&mut self, stage: &str) -> Result<(), OutputError> {
        self.manifest.stage = stage.to_string();
        self.save()
    }

    fn save(&mut self) -> Result<(), OutputError> {
        self.manifest.updated = now_utc();
        let path = self.dir.join(MANIFEST);
        let tmp = tmp_sibling(&path);
        let mut text = serde_json::to_string_pretty(&self.manifest).expect("manifests serialise");
        text.push('\n');
        write_synced(&tmp, text.as_bytes())?;
        rename(&tmp, &path)
    }

    /// Lists `rel` in the manifest (before the file exists) and returns its final and temporary
    /// paths, creating its directory.
    fn claim(&mut self, rel: &str) -> Result<(PathBuf, PathBuf), OutputError> {
        let path = self.dir.join(safe_relative(rel)?);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io("create directory", parent))?;
        }
        let written = self.manifest.files.len();
        if !self.manifest.files.iter().any(|f| f == rel) {
            self.manifest.files.push(rel.to_string());
        }
        self.manifest.stage = format!("writing {rel} ({written} files written)");
        self.save()?;
        let tmp = tmp_sibling(&path);
        Ok((path, tmp))
    }

    /// Writes `rel` atomically; returns its path.
    pub fn write(&mut self, rel: &str, bytes: &[u8]) -> Result<PathBuf, OutputError> {
        let (path, tmp) = self.claim(rel)?;
        write_synced(&tmp, bytes)?;
        rename(&tmp, &path)?;
        Ok(path)
    }

    /// Has `draw` write `rel` at a temporary path (with the same extension), then renames it
    /// into place; returns its path.
    pub fn render(
        &mut self,
        rel: &str,
        draw: impl FnOnce(&Path) -> Result<(), Box<dyn std::error::Error>>,
    ) -> Result<PathBuf, OutputError> {
        let (path, tmp) = self.claim(rel)?;
        if let Err(e) = draw(&tmp) {
            let _ = std::fs::remove_file(&tmp);
            return Err(OutputError::Draw {
                path: path.display().to_string(),
                message: e.to_string(),
            });
        }
        sync_file(&tmp)?;
        rename(&tmp, &path)?;
        Ok(path)
    }

    /// Marks the run complete, placing `last` (name, bytes) — `REPORT.md` — after the manifest
    /// says so; returns the last file's path, if any.
    pub fn finish(mut self, last: Option<(&str, &[u8])>) -> Result<Option<PathBuf>, OutputError> {
        let staged = match last {
            Some((rel, bytes)) => {
                let (path, tmp) = self.claim(rel)?;
                write_synced(&tmp, bytes)?;
                Some((path, tmp))
            }
            None => None,
        };
        self.manifest.status = Status::Complete;
        self.manifest.stage = "complete".into();
        self.save()?;
        if let Some((path, tmp)) = &staged {
            rename(tmp, path)?;
        }
        sync_dir(&self.dir)?;
        Ok(staged.map(|(path, _)| path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &Path, force: bool) -> Result<(RunDir, Vec<String>), OutputError> {
        RunDir::open(dir, "eval", "abc", "0123", force)
    }

    #[test]
    fn utc_formats_known_instants() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_700_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn paths_outside_the_directory_are_refused() {
        for bad in ["", "/etc/passwd", "../x", "a/../../x", "a\\b", "./x"] {
            assert!(safe_relative(bad).is_err(), "{bad}");
        }
        assert!(safe_relative("tables/harm.csv").is_ok());
    }

    #[test]
    fn a_complete_run_lists_every_file_and_places_the_last_one_last() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("out");
        let (mut run, notes) = open(&dir, false).unwrap();
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(run.manifest().status, Status::Running);
        run.write("results.jsonl", b"{}\n").unwrap();
        run.write("tables/a.csv", b"a\n").unwrap();
        run.render("plot.svg", |p| Ok(std::fs::write(p, "<svg/>")?))
            .unwrap();
        run.finish(Some(("REPORT.md", b"# report\n"))).unwrap();
        let m = read_manifest(&dir).unwrap().unwrap();
        assert_eq!(m.status, Status::Complete);
        assert_eq!(
            m.files,
            ["results.jsonl", "tables/a.csv", "plot.svg", "REPORT.md"]
        );
        let mut names = entries(&dir).unwrap();
        names.retain(|n| n != MANIFEST);
        assert_eq!(
            names,
            ["REPORT.md", "plot.svg", "results.jsonl", "tables"],
            "no temporary files left"
        );
    }

    #[test]
    fn a_rerun_removes_the_previous_runs_files_and_nothing_else() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let (mut run, _) = open(dir, false).unwrap();
        run.write("timeline_latency.png", b"old").unwrap();
        run.write("tables/old.csv", b"old").unwrap();
        run.finish(Some(("REPORT.md", b"old"))).unwrap();
        // A nested run of its own (reports/out/scenario) is not the previous run's.
        let (nested, _) =
            RunDir::open(&dir.join("scenario"), "scenario", "abc", "9", false).unwrap();
        nested.finish(None).unwrap();
        let (run, notes) = open(dir, false).unwrap();
        assert_eq!(
            notes,
            [format!(
                "removed the 3 files of the previous run from {}",
                dir.display()
            )]
        );
        assert!(!dir.join("timeline_latency.png").exists());
        assert!(!dir.join("REPORT.md").exists());
        assert!(!dir.join("tables").exists(), "emptied subdirectory removed");
        assert!(dir.join("scenario").join(MANIFEST).exists());
        assert!(run.manifest().files.is_empty());
    }

    #[test]
    fn an_interrupted_run_is_reported_and_its_leftovers_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let (mut run, _) = open(dir, false).unwrap();
        run.write("results.jsonl", b"{}\n").unwrap();
        // As if killed mid-write of the next file: listed, only a temporary file on disk.
        let (_, tmp_path) = run.claim("timelines.csv").unwrap();
        std::fs::write(&tmp_path, b"half").unwrap();
        drop(run);
        let (_, notes) = open(dir, false).unwrap();
        assert!(
            notes[0].contains("was interrupted at")
                && notes[0].contains("while writing timelines.csv (1 files written)")
                && notes[0].ends_with("starting clean"),
            "{notes:?}"
        );
        assert_eq!(entries(dir).unwrap(), [MANIFEST]);
    }

    #[test]
    fn a_complete_manifest_without_its_last_file_is_reported() {
        let tmp = tempfile::tempdir().unwrap();
        let (run, _) = open(tmp.path(), false).unwrap();
        run.finish(Some(("REPORT.md", b"r"))).unwrap();
        std::fs::remove_file(tmp.path().join("REPORT.md")).unwrap();
        let (_, notes) = open(tmp.path(), false).unwrap();
        assert!(notes[0].contains("REPORT.md is missing"), "{notes:?}");
    }

    #[test]
    fn a_foreign_directory_is_refused_unless_forced() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        std::fs::write(dir.join("REPORT.md"), "someone else's").unwrap();
        std::fs::create_dir(dir.join("notes")).unwrap();
        let err = open(dir, false).unwrap_err().to_string();
        assert!(
            err.contains("is not empty (REPORT.md, notes)")
                && err.contains("has no .microreboot-run.json")
                && err.contains("--force"),
            "{err}"
        );
        assert!(dir.join("REPORT.md").exists(), "nothing removed");
        // An unreadable manifest is no manifest.
        std::fs::write(dir.join(MANIFEST), "{\"format\": 1}").unwrap();
        let err = open(dir, false).unwrap_err().to_string();
        assert!(
            err.contains("it can read") && err.contains("missing field"),
            "{err}"
        );
        let (_, notes) = open(dir, true).unwrap();
        assert!(
            notes[0].contains("--force: removed the 2 entries"),
            "{notes:?}"
        );
        assert_eq!(entries(dir).unwrap(), [MANIFEST]);
    }

    #[test]
    fn force_never_empties_a_repository() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join(".git")).unwrap();
        std::fs::write(tmp.path().join("Cargo.toml"), "").unwrap();
        let err = open(tmp.path(), true).unwrap_err().to_string();
        assert!(
            err.contains("refusing to empty") && err.contains(".git"),
            "{err}"
        );
        assert!(tmp.path().join("Cargo.toml").exists());
    }

    #[test]
    fn a_manifest_listing_paths_outside_is_not_trusted() {
        let tmp = tempfile::tempdir().unwrap();
        let (run, _) = open(tmp.path(), false).unwrap();
        run.finish(None).unwrap();
        let path = tmp.path().join(MANIFEST);
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("\"files\": []", "\"files\": [\"../victim\"]");
        std::fs::write(&path, text).unwrap();
        let err = open(tmp.path(), false).unwrap_err().to_string();
        assert!(err.contains("../victim"), "{err}");
    }
}
