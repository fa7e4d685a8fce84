//! `aibox bundle create | inspect | verify | push` and `aibox copy`: moving packs between
//! stores, with their signatures, for mirrors and air-gapped sites.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::json;

use super::{Printer, human_bytes, short};
use aibox_pkgmgr::config::Settings;
use aibox_pkgmgr::cosign::PublicKey;
use aibox_pkgmgr::copy::{self, CopyReport};
use aibox_pkgmgr::resolve::PackSpec;
use aibox_pkgmgr::store::{self, Store, StoreLocation};
use aibox_pkgmgr::{Error, Result, bundle};

#[derive(Debug, Subcommand)]
pub enum BundleCommand {
    /// Write packs (with dependencies and signatures) from a store into a new bundle tar.
    Create {
        /// Packs: NAME, NAME@21, ... (also comma-separated).
        #[arg(required = true, value_delimiter = ',')]
        packs: Vec<String>,
        /// The store to take them from.
        #[arg(long)]
        from: String,
        /// The bundle to write (must not exist).
        #[arg(short = 'o', long)]
        output: PathBuf,
        /// Leave dependencies out.
        #[arg(long)]
        no_deps: bool,
        /// Public keys to ship in the bundle (as aibox/keys/NAME, with a policy fragment in
        /// aibox/policy.yaml) so a site can bootstrap trust: check their fingerprints out of band.
        #[arg(long = "include-keys", value_delimiter = ',')]
        include_keys: Vec<PathBuf>,
        /// Cut the bundle into parts FILE.001, FILE.002, ... of at most this size (e.g. 4G,
        /// 700M), to fit on media; aibox reads the parts as one bundle.
        #[arg(long, value_parser = parse_size)]
        max_size: Option<u64>,
    },
    /// List a bundle's packs, versions, digests, sizes and signatures (offline).
    Inspect {
        /// The bundle.
        bundle: PathBuf,
    },
    /// Verify every pack's signature and every blob's digest (offline).
    Verify {
        /// The bundle.
        bundle: PathBuf,
        /// Public keys; without them, the keys the policy trusts for the bundle.
        #[arg(long = "key")]
        keys: Vec<PathBuf>,
    },
    /// Copy every pack of a bundle into a store (a site registry).
    Push {
        /// The bundle.
        bundle: PathBuf,
        /// The destination store.
        #[arg(long)]
        to: String,
        /// Verify the bundle against these public keys first (refuse to push if it does not).
        #[arg(long = "key")]
        keys: Vec<PathBuf>,
    },
}

/// `aibox copy SRC DST PACKS...`
#[derive(Debug, Args)]
pub struct CopyArgs {
    /// Source store.
    from: String,
    /// Destination store.
    to: String,
    /// Packs: NAME, NAME@21, ...
    #[arg(required = true, value_delimiter = ',')]
    packs: Vec<String>,
    /// Leave dependencies out.
    #[arg(long)]
    no_deps: bool,
}

fn archive(path: &std::path::Path) -> StoreLocation {
    StoreLocation::Archive(path.to_owned())
}

async fn open_read(location: &StoreLocation, global: &Settings) -> Result<Box<dyn Store>> {
    refuse_offline(location, global)?;
    store::open(location, &global.registry.clone()).await
}

async fn open_write(location: &StoreLocation, global: &Settings) -> Result<Box<dyn Store>> {
    refuse_offline(location, global)?;
    store::open_for_write(location, &global.registry.clone()).await
}

fn refuse_offline(location: &StoreLocation, global: &Settings) -> Result<()> {
    if global.offline && matches!(location, StoreLocation::Registry { .. }) {
        return Err(Error::Missing(format!("--offline: store {location} needs the network")));
    }
    Ok(())
}

/// Copy, then re-open the destination and check what arrived.
async fn copy_and_check(src: &dyn Store, to: &StoreLocation, specs: &[PackSpec], with_deps: bool, global: &Settings, printer: Printer) -> Result<CopyReport> {
    let dst = open_write(to, global).await?;
    let result = copy::copy_packs(src, dst.as_ref(), specs, with_deps, &super::progress::reporter(printer)).await?;
    dst.finish().await?;
    drop(dst);
    let check = open_read(to, global).await?;
    copy::check_copy(check.as_ref(), &result).await?;
    Ok(result)
}

fn report(report: &CopyReport, to: &str, printer: Printer) {
    for p in &report.packs {
        let signed = if p.signatures > 0 { "with its signature" } else { "UNSIGNED" };
        printer.status("Copied", format!("{} {} ({}) {signed}{}", p.name, p.version, short(p.digest.as_str()), if p.requested { "" } else { " (dependency)" }));
    }
    printer.status(
        "Finished",
        format!("{} packs to {to}: sent {} blobs ({}), mounted {}, {} already there", report.packs.len(), report.blobs_sent, human_bytes(report.bytes_sent), report.blobs_mounted, report.blobs_skipped),
    );
    for p in report.packs.iter().filter(|p| p.signatures == 0) {
        printer.warn(format!("{} {} is unsigned: sites will refuse to install it", p.name, p.version));
    }
}

pub async fn copy(global: &Settings, args: CopyArgs, printer: Printer) -> Result<()> {
    let specs: Vec<PackSpec> = args.packs.iter().map(|s| s.trim().parse()).collect::<Result<_>>()?;
    let src = open_read(&StoreLocation::parse(&args.from)?, global).await?;
    let result = copy_and_check(src.as_ref(), &StoreLocation::parse(&args.to)?, &specs, !args.no_deps, global, printer).await?;
    report(&result, &args.to, printer);
    printer.document(&result);
    Ok(())
}

pub async fn run(cmd: BundleCommand, global: &Settings, printer: Printer) -> Result<()> {
    match cmd {
        BundleCommand::Create { packs, from, output, no_deps, include_keys, max_size } => {
            let specs: Vec<PackSpec> = packs.iter().map(|s| s.trim().parse()).collect::<Result<_>>()?;
            let keys: Vec<(String, Vec<u8>, PublicKey)> = include_keys
                .iter()
                .map(|p| {
                    let key = PublicKey::from_file(p)?;
                    let name = p.file_name().map_or_else(|| "key.pub".into(), |n| n.to_string_lossy().into_owned());
                    Ok((name, std::fs::read(p).map_err(Error::io("cannot read", p))?, key))
                })
                .collect::<Result<_>>()?;
            let src = open_read(&StoreLocation::parse(&from)?, global).await?;
            let writer = store::OciArchiveWriter::create(&output, max_size)?;
            let result = copy::copy_packs(src.as_ref(), &writer, &specs, !no_deps, &super::progress::reporter(printer)).await?;
            for (name, bytes, _) in &keys {
                writer.add_file(&format!("aibox/keys/{name}"), bytes)?;
            }
            if !keys.is_empty() {
                writer.add_file("aibox/policy.yaml", trust_fragment(&keys).as_bytes())?;
            }
            writer.finish().await?;
            let written = store::OciArchive::open(&output)?;
            if let Err(e) = copy::check_copy(&written, &result).await {
                // A bundle that does not read back as written is not left behind.
                store::remove_bundle_files(&written.files());
                return Err(e);
            }
            report(&result, &output.display().to_string(), printer);
            let files = written.files();
            if files.len() > 1 {
                printer.status("Split", format!("into {} parts: {}", files.len(), files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", ")));
            }
            for (name, _, key) in &keys {
                printer.status("Included", format!("key aibox/keys/{name} ({})", key.fingerprint));
            }
            printer.document(&json!({"files": files, "packs": result.packs, "blobs_sent": result.blobs_sent, "bytes_sent": result.bytes_sent, "keys": keys.iter().map(|(n, _, k)| json!({"file": format!("aibox/keys/{n}"), "fingerprint": k.fingerprint})).collect::<Vec<_>>()}));
            Ok(())
        }
        BundleCommand::Inspect { bundle } => {
            let store = open_read(&archive(&bundle), global).await?;
            let packs = bundle::inspect(store.as_ref()).await?;
            let keys: Vec<serde_json::Value> = store::OciArchive::open(&bundle)?
                .extra_files()?
                .into_iter()
                .filter(|(n, _)| n.starts_with("aibox/keys/"))
                .map(|(n, bytes)| json!({"file": n, "fingerprint": PublicKey::from_pem(&bytes, &n).map_or_else(|e| format!("not a public key: {e}"), |k| k.fingerprint)}))
                .collect();
            if printer.json {
                printer.document(&json!({"bundle": bundle, "packs": packs, "keys": keys}));
            } else {
                let mut out = format!("{:<24} {:<14} {:<20} {:>10}  {}\n", "PACK", "VERSION", "DIGEST", "SIZE", "SIGNATURES");
                for p in &packs {
                    out.push_str(&format!("{:<24} {:<14} {:<20} {:>10}  {}\n", p.name, p.tag, short(p.digest.as_str()), human_bytes(p.size), p.signatures));
                }
                for k in &keys {
                    out.push_str(&format!("included key {} {}\n", k["file"].as_str().unwrap_or_default(), k["fingerprint"].as_str().unwrap_or_default()));
                }
                printer.data(&out);
            }
            Ok(())
        }
        BundleCommand::Verify { bundle, keys } => {
            let location = archive(&bundle);
            let store = open_read(&location, global).await?;
            let keys: Vec<PublicKey> = if keys.is_empty() {
                aibox_pkgmgr::policy::layers::load(&global.policy)?.keys_for(&location)?
            } else {
                keys.iter().map(|k| PublicKey::from_file(k)).collect::<Result<_>>()?
            };
            let packs = bundle::verify(store.as_ref(), &keys).await?;
            for p in &packs {
                printer.status("Verified", format!("{} {} ({}) signed by {}", p.name, p.tag, short(p.digest.as_str()), short(p.verified_by.as_deref().unwrap_or_default())));
            }
            printer.document(&json!({"bundle": bundle, "verified": true, "packs": packs}));
            Ok(())
        }
        BundleCommand::Push { bundle, to, keys } => {
            let src = open_read(&archive(&bundle), global).await?;
            if keys.is_empty() {
                printer.warn(format!("{} is pushed without checking its signatures (pass --key); installs from {to} still verify them", bundle.display()));
            } else {
                let keys: Vec<PublicKey> = keys.iter().map(|k| PublicKey::from_file(k)).collect::<Result<_>>()?;
                let verified = bundle::verify(src.as_ref(), &keys).await?;
                printer.status("Verified", format!("{} packs in {}", verified.len(), bundle.display()));
            }
            let specs = copy::all_specs(src.as_ref()).await?;
            let result = copy_and_check(src.as_ref(), &StoreLocation::parse(&to)?, &specs, true, global, printer).await?;
            report(&result, &to, printer);
            printer.document(&result);
            Ok(())
        }
    }
}

/// The policy fragment shipped with `--include-keys`.
fn trust_fragment(keys: &[(String, Vec<u8>, PublicKey)]) -> String {
    let mut s = String::from(
        "# Trust for the packs of this bundle. Check each key's fingerprint with the publisher\n\
         # out of band, copy the keys to /etc/aibox/keys/, and set `store` to where the site\n\
         # serves the packs (the bundle itself, or the registry it was pushed into).\n",
    );
    for (name, _, key) in keys {
        s.push_str(&format!("#   {name}: {}\n", key.fingerprint));
    }
    s.push_str("trust:\n  - store: oci-archive:/media/aibox-bundle.tar\n    keys:\n");
    for (name, _, _) in keys {
        s.push_str(&format!("      - /etc/aibox/keys/{name}\n"));
    }
    s
}

/// `4G`, `700M`, `512K`, `1048576` (binary units) → bytes; at least 1 MiB.
fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let s = s.trim();
    let (number, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let shift = match unit.trim().to_ascii_uppercase().trim_end_matches("IB").trim_end_matches('B') {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        other => return Err(format!("unknown unit `{other}`: use K, M, G or T")),
    };
    let n: u64 = number.parse().map_err(|_| format!("`{s}` is not a size such as 4G or 700M"))?;
    let bytes = n.checked_shl(shift).filter(|b| b >> shift == n).ok_or_else(|| format!("`{s}` is too large"))?;
    if bytes < 1 << 20 { Err("the smallest part size is 1M".into()) } else { Ok(bytes) }
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4G"), Ok(4 << 30));
        assert_eq!(parse_size("700M"), Ok(700 << 20));
        assert_eq!(parse_size("700MiB"), Ok(700 << 20));
        assert_eq!(parse_size("2048K"), Ok(2 << 20));
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert!(parse_size("512K").is_err(), "below 1M");
        assert!(parse_size("4X").is_err());
        assert!(parse_size("G").is_err());
        assert!(parse_size("99999999999T").is_err());
    }
}
