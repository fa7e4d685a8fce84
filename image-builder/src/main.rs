//! The `aibox-image` binary: parse arguments, bake, print, map the outcome to an exit code
//! (0 ok, 1 refused or failed, 2 usage).

use std::path::PathBuf;
use std::process::ExitCode;

use aibox_image_builder::{BakeDate, BakeReport, ImagesFile, Options, bake};
use aibox_pkgmgr::term::{Printer, human_bytes, progress, short};
use clap::{Parser, Subcommand};

/// aibox-image: bake aibox base and variant images, without a daemon, reproducible and signed.
#[derive(Debug, Parser)]
#[command(name = "aibox-image", version, about)]
struct Cli {
    /// Print one JSON document on stdout instead of status lines.
    #[arg(long, global = true)]
    json: bool,
    /// Print nothing but errors.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build the images an images.yaml describes, push them with a plain and a date-stamped
    /// tag, sign them and attach their SBOMs.
    Bake {
        /// The images file (image-builder/images.yaml).
        file: PathBuf,
        /// Bake only this image (repeatable); the base is still built when a variant needs it.
        #[arg(long, value_name = "NAME")]
        only: Vec<String>,
        /// Sign images and SBOMs with this Cosign key (password: COSIGN_PASSWORD or a prompt).
        #[arg(long, value_name = "KEY", env = "AIBOX_IMAGE_SIGN_KEY")]
        sign_key: Option<PathBuf>,
        /// The date for tags and creation times, YYYYMMDD (default: SOURCE_DATE_EPOCH, else today, UTC).
        #[arg(long, value_name = "YYYYMMDD")]
        date: Option<String>,
        /// The source revision recorded in org.opencontainers.image.revision.
        #[arg(long, value_name = "REV", env = "AIBOX_IMAGE_REVISION")]
        revision: Option<String>,
        /// Compute every image and its digest, push nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

fn main() -> ExitCode {
    aibox_pkgmgr::store::registry_config::ensure_trust_store();
    let cli = Cli::parse();
    let printer = Printer { quiet: cli.quiet, json: cli.json, verbose: false };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            printer.error(format!("cannot start the async runtime: {e}"), None);
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli.command, printer)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let hint = e.hint();
            printer.error(&e, hint.as_deref());
            printer.document(&serde_json::json!({"error": {"message": e.to_string(), "hint": hint}}));
            ExitCode::from(1)
        }
    }
}

async fn run(command: Command, printer: Printer) -> aibox_image_builder::Result<()> {
    let Command::Bake { file, only, sign_key, date, revision, dry_run } = command;
    let images = ImagesFile::load(&file)?;
    let date = BakeDate::new(date.as_deref()).map_err(|message| aibox_image_builder::Error::ImagesFile { path: file.clone(), message })?;
    // The key first: a wrong password fails before anything is built.
    let key = match &sign_key {
        Some(path) => {
            let password = aibox_pkgmgr::cosign::password_from_env_or_prompt(false)?;
            Some(aibox_pkgmgr::cosign::load_signing_key(path, &password)?)
        }
        None => None,
    };
    if key.is_none() && !dry_run {
        printer.warn("no --sign-key: the images are pushed unsigned, and sandboxes that verify images will refuse them");
    }
    let options = Options { only, key, date, revision, dry_run, registry: aibox_pkgmgr::store::RegistryConfig::from_env(), reporter: progress::reporter(printer) };
    let report = bake(&images, &options).await?;
    print_report(&report, printer);
    printer.document(&report);
    Ok(())
}

fn print_report(report: &BakeReport, printer: Printer) {
    for image in &report.images {
        let packs: Vec<String> = image.packs.iter().map(|p| format!("{}@{}", p.name, p.version)).collect();
        let with = if packs.is_empty() { String::new() } else { format!(" with {}", packs.join(", ")) };
        let verb = if report.dry_run { "Would push" } else { "Pushed" };
        printer.status(verb, format!("{}:{} {}{with}", image.name, image.tags.join(", "), short(image.digest.as_str())));
        if !report.dry_run {
            let u = &image.upload;
            printer.status("Sent", format!("{} in {} blobs + {} of manifests; {} blobs mounted, {} already there", human_bytes(u.bytes_uploaded), u.blobs_uploaded, human_bytes(u.manifest_bytes), u.blobs_mounted, u.blobs_present));
        }
        if let Some(sig) = &image.signature {
            printer.status("Signed", format!("{} (signature {}, SBOM {})", image.name, short(sig.as_str()), image.sbom.as_ref().map_or("-", |s| short(s.as_str()))));
        }
        for account in &image.replaced_accounts {
            printer.warn(format!("{}: removed the base's account `{account}`, which held the image user's uid", image.name));
        }
    }
}
