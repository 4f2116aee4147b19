// The benchmark's "limit" row (bench/limit.ts): a RUSTC_WRAPPER that answers every registry
// crate's rustc call by copying the outputs a plain build of a sibling copy left, and a build
// script replayer in the same binary. No lookup, no key, no unpacking: what a wrapper design can
// reach at all. Std only; compiled with `rustc -O --edition 2021`.
//
// Environment: COPY_ONLY_FROM is the sibling's target dir, COPY_ONLY_TO the project's; with
// COPY_ONLY_LOG set, every registry crate's call appends a line to that file: `copied <output>`,
// or `real <crate>` when it went to rustc after all.

use std::env;
use std::ffi::OsString;
use std::fs;
use std::io::{self, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{exit, Command};

/// The name cargo runs a compiled build script by (a hard link it makes next to rustc's output).
const BUILD_SCRIPT: &str = "build-script-build";

fn main() {
    let args: Vec<OsString> = env::args_os().collect();
    let roots = (env::var("COPY_ONLY_FROM"), env::var("COPY_ONLY_TO"));
    let invoked_as = Path::new(&args[0])
        .file_name()
        .map(|name| name.to_os_string());
    if invoked_as.as_deref() == Some(BUILD_SCRIPT.as_ref()) {
        let (Ok(from), Ok(to)) = roots else {
            fail("COPY_ONLY_FROM and COPY_ONLY_TO must be set")
        };
        if let Err(error) = replay_build_script(&from, &to) {
            fail(&format!("Cannot replay the build script run: {error}"));
        }
        return;
    }
    if args.len() < 2 {
        fail("usage: copy_only RUSTC ARGS...");
    }
    if let (Ok(from), Ok(to)) = roots {
        if let Some(call) = Call::parse(&args[2..], &from, &to) {
            if call.answer(&from, &to).is_ok() {
                log(&format!("copied {}", call.outputs[0].0.display()));
                return;
            }
        }
    }
    if registry_crate(&args[2..]) {
        let name = args
            .windows(2)
            .find(|pair| pair[0] == "--crate-name")
            .map(|pair| &pair[1]);
        log(&format!(
            "real {}",
            name.and_then(|name| name.to_str()).unwrap_or("?")
        ));
    }
    let error = Command::new(&args[1]).args(&args[2..]).exec();
    fail(&format!("Cannot run {:?}: {error}", args[1]));
}

/// Cargo caps lints of non-path packages only; workspace members are primary packages.
fn registry_crate(args: &[OsString]) -> bool {
    env::var_os("CARGO_PRIMARY_PACKAGE").is_none()
        && args
            .windows(2)
            .any(|pair| pair[0] == "--cap-lints" && pair[1] == "allow")
}

fn log(line: &str) {
    if let Ok(path) = env::var("COPY_ONLY_LOG") {
        let file = fs::OpenOptions::new().create(true).append(true).open(path);
        let _ = file.and_then(|mut file| writeln!(file, "{line}"));
    }
}

fn fail(message: &str) -> ! {
    eprintln!("copy_only: {message}");
    exit(1)
}

/// A registry crate's compile whose every output the sibling's target dir holds.
struct Call {
    /// (path in the project, path in the sibling, JSON emit kind) of each output, in rustc's order.
    outputs: Vec<(PathBuf, PathBuf, &'static str)>,
    /// Whether the call compiles a build script (answered with this binary instead of the script).
    build_script: bool,
    artifacts: bool,
}

impl Call {
    /// None for anything but a registry crate's plain compile into the project's target dir.
    fn parse(args: &[OsString], from: &str, to: &str) -> Option<Call> {
        if !registry_crate(args) {
            return None;
        }
        let args: Vec<&str> = args.iter().map(|arg| arg.to_str()).collect::<Option<_>>()?;
        let value = |flag: &str| {
            let at = args.iter().position(|arg| *arg == flag)?;
            args.get(at + 1).copied()
        };
        if args
            .iter()
            .any(|arg| *arg == "-o" || arg.starts_with("--print") || *arg == "-")
        {
            return None;
        }
        let name = value("--crate-name")?;
        let extra = args
            .windows(2)
            .find_map(|pair| (pair[0] == "-C").then(|| pair[1].strip_prefix("extra-filename="))?)
            .unwrap_or("");
        let out_dir = value("--out-dir")?;
        let sibling_dir = format!("{from}{}", out_dir.strip_prefix(to)?);
        let emits: Vec<&str> = args
            .iter()
            .find_map(|arg| arg.strip_prefix("--emit="))?
            .split(',')
            .collect();
        let crate_types: Vec<&str> = args
            .windows(2)
            .filter(|pair| pair[0] == "--crate-type")
            .flat_map(|pair| pair[1].split(','))
            .collect();
        let mut files: Vec<(String, &'static str)> = Vec::new();
        for emit in &emits {
            match *emit {
                "dep-info" => files.push((format!("{name}{extra}.d"), "dep-info")),
                "metadata" | "link" => {}
                _ => return None,
            }
        }
        if emits.contains(&"metadata") {
            if crate_types
                .iter()
                .any(|kind| !matches!(*kind, "lib" | "rlib"))
            {
                return None;
            }
            files.push((format!("lib{name}{extra}.rmeta"), "metadata"));
        }
        if emits.contains(&"link") {
            for kind in &crate_types {
                let file = match *kind {
                    "lib" | "rlib" => format!("lib{name}{extra}.rlib"),
                    "proc-macro" => format!("lib{name}{extra}.so"),
                    "bin" => format!("{name}{extra}"),
                    _ => return None,
                };
                files.push((file, "link"));
            }
        }
        let outputs: Vec<_> = files
            .into_iter()
            .map(|(file, emit)| {
                (
                    Path::new(out_dir).join(&file),
                    Path::new(&sibling_dir).join(&file),
                    emit,
                )
            })
            .collect();
        if files_missing(&outputs) {
            return None;
        }
        Some(Call {
            outputs,
            build_script: name == "build_script_build" && crate_types == ["bin"],
            artifacts: args
                .iter()
                .any(|arg| arg.starts_with("--json=") && arg.contains("artifacts")),
        })
    }

    /// Copies the outputs (a build script's binary is this one), then says what rustc would.
    fn answer(&self, from: &str, to: &str) -> io::Result<()> {
        let mut notes = String::new();
        for (path, sibling, emit) in &self.outputs {
            if *emit == "dep-info" {
                // The sibling's paths (its outputs, its OUT_DIRs) become the project's.
                fs::write(path, fs::read_to_string(sibling)?.replace(from, to))?;
            } else if self.build_script && *emit == "link" {
                let _ = fs::remove_file(path);
                fs::hard_link(env::current_exe()?, path)?;
            } else {
                fs::copy(sibling, path)?;
            }
            if self.artifacts {
                let path = path
                    .to_str()
                    .unwrap_or_default()
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"");
                notes.push_str(&format!(
                    "{{\"$message_type\":\"artifact\",\"artifact\":\"{path}\",\"emit\":\"{emit}\"}}\n"
                ));
            }
        }
        io::stderr().write_all(notes.as_bytes())
    }
}

fn files_missing(outputs: &[(PathBuf, PathBuf, &str)]) -> bool {
    outputs.is_empty() || outputs.iter().any(|(_, sibling, _)| !sibling.is_file())
}

/// A build script run: the sibling's run of the same unit left its OUT_DIR and its stdout.
fn replay_build_script(from: &str, to: &str) -> io::Result<()> {
    let out_dir = env::var("OUT_DIR").map_err(|_| io::Error::other("OUT_DIR is not set"))?;
    let relative = out_dir
        .strip_prefix(to)
        .ok_or_else(|| io::Error::other(format!("OUT_DIR \"{out_dir}\" is not under \"{to}\"")))?;
    let sibling_out = PathBuf::from(format!("{from}{relative}"));
    copy_tree(&sibling_out, Path::new(&out_dir))?;
    let recorded = sibling_out.parent().unwrap_or(&sibling_out).join("output");
    io::stdout().write_all(fs::read_to_string(recorded)?.replace(from, to).as_bytes())
}

fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}
