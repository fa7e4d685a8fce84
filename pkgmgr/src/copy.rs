//! One generic store-to-store copy, used for mirroring (`aibox copy`), making bundles
//! (`aibox bundle create`) and loading them (`aibox bundle push`).
//!
//! For each pack (and, by default, its dependencies): the blobs the destination lacks (others
//! are skipped, so an interrupted copy resumes without re-sending what arrived), then the
//! manifest under its version tag, then its Cosign signature manifest, so signatures are never
//! left behind. Every blob is checked against its digest on the way.

use std::collections::HashSet;

use aibox_schema::PackManifest;
use serde::Serialize;

use crate::digest::Digest;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::progress::{ReportingReader, Reporter};
use crate::resolve::{PackSpec, VersionReq, find_target, read_pack_manifest};
use crate::store::retry::RetryPolicy;
use crate::store::{self, RawManifest, Store};

/// One pack copied.
#[derive(Debug, Clone, Serialize)]
pub struct CopiedPack {
    /// Pack name.
    pub name: String,
    /// Version (also its tag).
    pub version: String,
    /// Manifest digest.
    pub digest: Digest,
    /// Signature manifests carried along (0: the pack is unsigned).
    pub signatures: usize,
    /// Whether it was asked for (false: a dependency).
    pub requested: bool,
}

/// What a copy did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CopyReport {
    /// Packs copied, dependencies first.
    pub packs: Vec<CopiedPack>,
    /// Blobs sent.
    pub blobs_sent: u32,
    /// Bytes sent.
    pub bytes_sent: u64,
    /// Blobs the destination already had.
    pub blobs_skipped: u32,
    /// Blobs mounted from the source repository (same registry): nothing sent.
    pub blobs_mounted: u32,
}

/// Copy `specs` (resolved in `src`) and, when `with_deps`, their dependencies to `dst`. The
/// caller finishes `dst` ([`Store::finish`]).
pub async fn copy_packs(src: &dyn Store, dst: &dyn Store, specs: &[PackSpec], with_deps: bool, reporter: &Arc<dyn Reporter>) -> Result<CopyReport> {
    let mut report = CopyReport::default();
    let mut done: HashSet<(String, Digest)> = HashSet::new();
    let mut queue: Vec<(PackSpec, bool)> = specs.iter().rev().map(|s| (s.clone(), true)).collect();
    let mut ordered: Vec<(String, RawManifest, PackManifest, bool)> = Vec::new();
    // Resolve everything first: a missing pack or dependency fails before anything is sent.
    while let Some((spec, requested)) = queue.pop() {
        let (raw, pack) = resolve(src, &spec).await?;
        if !done.insert((pack.name.to_string(), raw.digest.clone())) {
            continue;
        }
        if with_deps {
            for dep in &pack.depends {
                queue.push((PackSpec { name: dep.name.clone(), req: VersionReq::from_dependency(dep.version.as_deref()) }, false));
            }
        }
        ordered.push((pack.name.to_string(), raw, pack, requested));
    }
    for (name, raw, pack, requested) in ordered.into_iter().rev() {
        let label = format!("{name} {}", pack.version);
        copy_manifest(src, dst, &name, &label, &raw, Some(&pack.tag()), &mut report, reporter).await?;
        let mut signatures = 0;
        if let Some(sig) = src.fetch_manifest(&name, &raw.digest.signature_tag()).await? {
            copy_manifest(src, dst, &name, &format!("{label} signature"), &sig, Some(&raw.digest.signature_tag()), &mut report, reporter).await?;
            signatures = 1;
        }
        report.packs.push(CopiedPack { name, version: pack.version.clone(), digest: raw.digest, signatures, requested });
    }
    Ok(report)
}

/// Re-read what a copy wrote, from a fresh handle on the destination: every pack's tag names
/// the copied manifest, its signature manifest is there, and the destination has every blob.
pub async fn check_copy(dst: &dyn Store, report: &CopyReport) -> Result<()> {
    let missing = |what: String| Error::Corrupt { store: dst.location().to_string(), reason: format!("after the copy, {what}") };
    for p in &report.packs {
        let tag = p.version.replace('+', "_");
        let raw = dst.fetch_manifest(&p.name, &tag).await?.ok_or_else(|| missing(format!("{}:{tag} is missing", p.name)))?;
        if raw.digest != p.digest {
            return Err(missing(format!("{}:{tag} is {}, not the copied {}", p.name, raw.digest, p.digest)));
        }
        let mut manifests = vec![raw];
        if p.signatures > 0 {
            manifests.push(dst.fetch_manifest(&p.name, &p.digest.signature_tag()).await?.ok_or_else(|| missing(format!("the signature of {}:{tag} is missing", p.name)))?);
        }
        for m in manifests {
            let m = m.image_manifest(dst.location())?;
            for desc in std::iter::once(&m.config).chain(&m.layers) {
                let digest: Digest = desc.digest.parse().map_err(|e| Error::Corrupt { store: dst.location().to_string(), reason: e })?;
                if !dst.has_blob(&p.name, &digest).await? {
                    return Err(missing(format!("blob {digest} of {} is missing", p.name)));
                }
            }
        }
    }
    Ok(())
}

/// Every tagged pack version in `src` (what `bundle push` moves).
pub async fn all_specs(src: &dyn Store) -> Result<Vec<PackSpec>> {
    let mut specs = Vec::new();
    for name in src.list_packs().await? {
        for tag in src.list_tags(&name).await? {
            if let Ok(version) = semver::Version::parse(&tag.replace('_', "+")) {
                specs.push(PackSpec { name: name.parse().map_err(|e: aibox_schema::NameError| Error::Resolve(e.to_string()))?, req: VersionReq::Exact(version) });
            }
        }
    }
    Ok(specs)
}

async fn resolve(src: &dyn Store, spec: &PackSpec) -> Result<(RawManifest, PackManifest)> {
    let name = spec.name.as_str();
    let target = find_target(src, spec).await?;
    let raw = store::require_manifest(src, name, &target).await?;
    let pack = read_pack_manifest(src, name, &target, &raw.image_manifest(src.location())?).await?;
    Ok((raw, pack))
}

#[allow(clippy::too_many_arguments)]
async fn copy_manifest(
    src: &dyn Store,
    dst: &dyn Store,
    name: &str,
    label: &str,
    raw: &RawManifest,
    tag: Option<&str>,
    report: &mut CopyReport,
    reporter: &Arc<dyn Reporter>,
) -> Result<()> {
    let manifest = raw.image_manifest(src.location())?;
    for desc in std::iter::once(&manifest.config).chain(&manifest.layers) {
        let digest: Digest = desc.digest.parse().map_err(|e| Error::Corrupt { store: src.location().to_string(), reason: e })?;
        if dst.has_blob(name, &digest).await? {
            report.blobs_skipped += 1;
            continue;
        }
        if dst.mount_blob(name, &digest, src.location(), name).await? {
            report.blobs_mounted += 1;
            continue;
        }
        let size = u64::try_from(desc.size).unwrap_or(0);
        // Streamed from source to destination, checked against its digest on the way. A stream
        // cannot be sent twice: an upload the registry failed is sent again from the source.
        let retry = RetryPolicy::default();
        let mut attempt = 1;
        loop {
            let id = reporter.start("Copying", label, size);
            let reader = crate::digest::VerifyingReader::new(src.open_blob(name, &digest, Some(size)).await?, digest.clone(), size);
            let reader = ReportingReader::new(reader, reporter.clone(), id);
            let pushed = dst.push_blob_stream(name, &digest, size, Box::pin(reader)).await;
            reporter.finish(id);
            match pushed {
                Err(Error::RegistryFailed { .. }) if attempt < retry.attempts => {
                    tokio::time::sleep(retry.delay(attempt, None)).await;
                    attempt += 1;
                }
                other => break other?,
            }
        }
        report.blobs_sent += 1;
        report.bytes_sent += size;
    }
    if dst.fetch_manifest(name, raw.digest.as_str()).await?.is_none() || tag.is_some() {
        dst.push_manifest(name, tag, raw).await?;
    }
    Ok(())
}
