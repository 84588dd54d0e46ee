//! The progress file of a chunked flash: which chunks of which image were proven on the board
//! (written, read back, CRC equal). It lives beside the image (`IMAGE.rvflash.json`), or in the
//! cache directory when that directory is not writable. `--resume` skips the chunks it lists
//! (after re-proving each by a read-back, which costs no line time); a changed image, chunk
//! size or target invalidates it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::progress::note;
use crate::vocab::Reporter;

/// What the file records.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Record {
    /// SHA-256 of the whole image, hex.
    pub image_sha256: String,
    pub image_len: u64,
    pub chunk: u64,
    /// Where the image goes, e.g. `virtio 0 @ 0x0`.
    pub target: String,
    /// Indexes of the chunks proven on the board.
    pub proven: BTreeSet<usize>,
}

/// The progress of one image's flash, saved after every proven chunk.
pub struct Progress {
    path: Option<PathBuf>,
    record: Record,
}

/// Where the progress file of `image` lives when its directory is writable.
pub fn beside(image: &Path) -> PathBuf {
    let mut name = image.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".rvflash.json");
    image.with_file_name(name)
}

impl Progress {
    /// The progress of flashing `data` (read from `image`) with `chunk`-byte chunks to
    /// `target`. With `resume`, the chunks a matching earlier run proved are taken over;
    /// otherwise, or when the file is for another image, it starts empty.
    pub fn open(image: &Path, data: &[u8], chunk: u64, target: &str, resume: bool, reporter: &dyn Reporter) -> Self {
        let sha = hex(&Sha256::digest(data));
        let fresh = Record {
            image_sha256: sha.clone(),
            image_len: data.len() as u64,
            chunk,
            target: target.to_string(),
            proven: BTreeSet::new(),
        };
        let fallback = crate::vocab::cache_dir().join("flash").join(format!("{}.rvflash.json", &sha[..16]));
        let candidates = [beside(image), fallback];
        let mut record = fresh.clone();
        if resume {
            let found = candidates.iter().find_map(|p| {
                let text = std::fs::read_to_string(p).ok()?;
                serde_json::from_str::<Record>(&text).ok().map(|r| (p.clone(), r))
            });
            match found {
                Some((p, r)) if r.image_sha256 == fresh.image_sha256 && r.chunk == chunk && r.target == target => {
                    note(reporter, &format!("resuming: {} chunk(s) proven earlier ({})", r.proven.len(), p.display()));
                    record = r;
                }
                Some((p, _)) => note(
                    reporter,
                    &format!("--resume: {} is for another image, chunk size or target; starting over", p.display()),
                ),
                None => note(reporter, "--resume: no progress file for this image; starting from the first chunk"),
            }
        }
        let mut progress = Progress { path: None, record };
        for p in candidates {
            progress.path = Some(p);
            if progress.save().is_ok() {
                return progress;
            }
        }
        note(reporter, "cannot write a progress file beside the image or in the cache; --resume will not work");
        progress.path = None;
        progress
    }

    /// Whether chunk `i` was proven (by this run or the one resumed).
    pub fn is_proven(&self, i: usize) -> bool {
        self.record.proven.contains(&i)
    }

    /// Records chunk `i` as proven. A file that cannot be written is reported, not fatal.
    pub fn prove(&mut self, i: usize, reporter: &dyn Reporter) {
        self.record.proven.insert(i);
        if let Err(e) = self.save() {
            note(reporter, &format!("cannot update the progress file: {e}"));
        }
    }

    /// Takes chunk `i` off the proven list (its read-back no longer matches).
    pub fn forget(&mut self, i: usize) {
        self.record.proven.remove(&i);
    }

    /// The file, when there is one.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    fn save(&self) -> std::io::Result<()> {
        let Some(path) = &self.path else { return Ok(()) };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension("tmp");
        let text = serde_json::to_string_pretty(&self.record).map_err(std::io::Error::other)?;
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, path)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::Silent;

    #[test]
    fn resume_takes_over_proven_chunks_of_the_same_image_only() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("disk.img");
        let data = vec![1u8; 4096];
        std::fs::write(&img, &data).unwrap();
        let mut p = Progress::open(&img, &data, 1024, "virtio 0 @ 0x0", false, &Silent);
        assert_eq!(p.path(), Some(beside(&img).as_path()));
        p.prove(0, &Silent);
        p.prove(2, &Silent);
        let again = Progress::open(&img, &data, 1024, "virtio 0 @ 0x0", true, &Silent);
        assert!(again.is_proven(0) && again.is_proven(2) && !again.is_proven(1));
        // Without --resume the record starts empty.
        let fresh = Progress::open(&img, &data, 1024, "virtio 0 @ 0x0", false, &Silent);
        assert!(!fresh.is_proven(0));
        let mut p = Progress::open(&img, &data, 1024, "virtio 0 @ 0x0", false, &Silent);
        p.prove(1, &Silent);
        // A changed image, chunk size or target invalidates it.
        let changed = vec![2u8; 4096];
        assert!(!Progress::open(&img, &changed, 1024, "virtio 0 @ 0x0", true, &Silent).is_proven(1));
        p.prove(1, &Silent);
        assert!(!Progress::open(&img, &data, 2048, "virtio 0 @ 0x0", true, &Silent).is_proven(1));
        p.prove(1, &Silent);
        assert!(!Progress::open(&img, &data, 1024, "mmc 0 @ 0x0", true, &Silent).is_proven(1));
    }
}
