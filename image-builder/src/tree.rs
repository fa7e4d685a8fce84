//! A small set of entries to write as one layer (the aibox layer, a variant's state layer),
//! kept in path order, with the parent directories a base lacks added as it goes.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::base_files::BaseFiles;
use crate::error::{Error, Result};
use crate::layer::{LayerFile, LayerWriter, Meta};

/// One entry.
#[derive(Debug, Clone)]
pub enum Item {
    /// A directory.
    Dir(Meta),
    /// A file with this content.
    File(Meta, Vec<u8>),
    /// A file copied from the host.
    HostFile(Meta, PathBuf),
    /// A symlink to this target.
    Symlink(Meta, String),
}

/// Entries by path.
#[derive(Debug, Default)]
pub struct Tree {
    items: BTreeMap<String, Item>,
}

impl Tree {
    /// Add `item` at `path`; its parent directories the base lacks are added as root 0755. A
    /// symlink of the base at `path` or above it is an error: what a runtime makes of an entry
    /// beneath a symlink differs (containerd follows it, containers-storage replaces it).
    pub fn put(&mut self, base: &BaseFiles, path: &str, item: Item) -> Result<()> {
        if let Some((link, target)) = base.symlink_on(path) {
            return Err(Error::BaseLayout(format!("/{link} is a symlink (to {target}); aibox-image would write /{path} beneath it")));
        }
        let mut parent = path;
        while let Some((p, _)) = parent.rsplit_once('/') {
            if !base.exists(p) && !self.items.contains_key(p) {
                self.items.insert(p.to_owned(), Item::Dir(Meta::root(0o755)));
            }
            parent = p;
        }
        self.items.insert(path.to_owned(), item);
        Ok(())
    }

    /// Write the entries as a layer.
    pub fn write(&self, out: &std::path::Path, mtime: u64) -> Result<LayerFile> {
        let mut layer = LayerWriter::create(out, mtime)?;
        for (path, item) in &self.items {
            match item {
                Item::Dir(meta) => layer.dir(path, *meta)?,
                Item::File(meta, content) => layer.file(path, *meta, content)?,
                Item::HostFile(meta, host) => {
                    let file = std::fs::File::open(host).map_err(Error::io("cannot read", host))?;
                    let size = file.metadata().map_err(Error::io("cannot read", host))?.len();
                    layer.file_from(path, *meta, size, std::io::BufReader::new(file), &[])?;
                }
                Item::Symlink(meta, target) => layer.link(tar::EntryType::Symlink, path, target.as_bytes(), *meta, &[])?,
            }
        }
        layer.finish()
    }
}
