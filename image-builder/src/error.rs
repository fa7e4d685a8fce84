//! What can go wrong while baking, each with what to do about it.

use std::path::PathBuf;

/// A bake error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// From the package manager: stores, resolution, signatures, policy, I/O.
    #[error(transparent)]
    Pkg(#[from] aibox_pkgmgr::Error),
    /// `images.yaml` does not parse or says something impossible.
    #[error("{}: {message}", path.display())]
    ImagesFile {
        /// The file.
        path: PathBuf,
        /// What is wrong, with line and column where known.
        message: String,
    },
    /// The base root filesystem tarball cannot be used.
    #[error("rootfs {}: {reason}", path.display())]
    Rootfs {
        /// The tarball.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The base image cannot be used.
    #[error("base image {reference}: {reason}")]
    BaseImage {
        /// As written in images.yaml.
        reference: String,
        /// Why.
        reason: String,
    },
    /// A pack's layer would put something into the image that an install would refuse.
    #[error("pack {pack}: {reason}; it is not baked into any image")]
    PackLayer {
        /// `name@version`.
        pack: String,
        /// Which rule it breaks.
        reason: String,
    },
    /// The base's filesystem does not fit what the builder adds (a symlink where it writes).
    #[error("the base: {0}")]
    BaseLayout(String),
    /// The `dev` account cannot be added to the base's `/etc/passwd`.
    #[error("cannot add the user: {0}")]
    Account(String),
}

impl Error {
    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Pkg(e) => e.hint(),
            Error::ImagesFile { .. } => Some("fix images.yaml (docs/images.md describes every field)".into()),
            Error::Rootfs { .. } => Some("give a tar of the root filesystem (plain, gzip or zstd), e.g. `tar --numeric-owner -C ROOTFS -cf rootfs.tar .`".into()),
            Error::BaseImage { .. } => Some("check the reference with `skopeo inspect`; the base must be a Linux image for this platform".into()),
            Error::PackLayer { .. } => Some("republish the pack with `aibox pack publish` (it writes layers that follow these rules)".into()),
            Error::BaseLayout(_) => Some("use a base where these paths are plain directories (aibox-image never writes through a symlink of the base)".into()),
            Error::Account(_) => Some("set `base.user` (name, uid) in images.yaml to an account that fits the base".into()),
        }
    }

    /// An I/O error on `path`.
    pub fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let f = aibox_pkgmgr::Error::io(action, path);
        move |e| Error::Pkg(f(e))
    }
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
