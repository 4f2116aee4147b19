//! The front door: the tiny native RUSTC_WRAPPER that hands each rustc call to the resident
//! cargo-warmup daemon over a Unix socket and relays its answer, so a served crate costs cargo a
//! few milliseconds instead of a Deno start. All cache logic lives in the daemon (TypeScript);
//! this only relays bytes, runs rustc when told to, and falls back to running rustc itself when
//! the daemon is absent, slow or broken, so the cache is never the reason a build fails.
//!
//! Standard library only, built with the user's own rustc (see build.ts):
//!   CARGO_WARMUP_TAG=<tag> CARGO_WARMUP_PROGRAM=<path> rustc --edition 2021 -O cargo_warmup.rs
//! Wire format (src/daemon/frames.ts): frames of a type byte, a big-endian u32 length, a payload.

use std::env;
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::raw::{c_int, c_ulong};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::os::unix::io::FromRawFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{exit, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

extern "C" {
    // From the C library every Rust program on Unix links; the standard library wraps none of them.
    fn setsid() -> i32;
    fn signal(signum: c_int, handler: usize) -> usize;
    fn raise(signum: c_int) -> c_int;
    fn setrlimit(resource: c_int, limit: *const [c_ulong; 2]) -> c_int;
    fn kill(pid: c_int, signum: c_int) -> c_int;
}
/// `signal`'s default action, and `setrlimit`'s resource for the size of core files (the same
/// numbers on Linux and macOS).
const SIG_DFL: usize = 0;
const RLIMIT_CORE: c_int = 4;

const TAG: &str = env!("CARGO_WARMUP_TAG");
const PROGRAM: &str = env!("CARGO_WARMUP_PROGRAM");
const MAX_PAYLOAD: usize = 256 * 1024 * 1024;
/// The real build-script binary beside a replayer (src/dispatch/replayer.ts).
const REAL_BUILD_SCRIPT: &str = "warmup-real-build-script";
/// A daemon start is repeated at most this often, across all calls of all builds, while the
/// daemon it started may still come up.
const SPAWN_INTERVAL: Duration = Duration::from_secs(3);
/// A daemon that is gone (stopped, or failed) is started again at most this often.
const RESPAWN_AFTER: Duration = Duration::from_millis(250);
/// How long after a spawn a call waits for the new daemon's socket rather than serve itself
/// (CARGO_WARMUP_DAEMON_STARTUP_MS): the daemon listens within a few hundred milliseconds, and a
/// call served in a process of its own costs about 80 ms of CPU, which the first wave of a build's
/// calls would all pay at once. A daemon that never comes up costs a call at most this much, and
/// only in this window; one whose process ends is not waited for.
const STARTUP_WAIT_MS: u64 = 1500;

// Frame types, the first byte of each frame: FRAME in src/daemon/frames.ts, under the same names
// (tests/frontdoor_test.ts fails when the two lists differ in a name or a byte).
// Client to daemon: the request (JSON: v, tag, argv, cwd, ppid, env); after a miss the compiler's
// stdout, its stderr and its exit (JSON: code, ms).
const FRAME_REQUEST: u8 = b'Q';
const FRAME_MISS_STDOUT: u8 = b'o';
const FRAME_MISS_STDERR: u8 = b'e';
const FRAME_MISS_DONE: u8 = b'D';
// Daemon to client: bytes for our stdout and stderr, then one of served (exit with the ASCII
// code), not cacheable (exec the compiler) or a miss (run it and report; "hold": then wait).
const FRAME_STDOUT: u8 = b'O';
const FRAME_STDERR: u8 = b'E';
const FRAME_SERVED: u8 = b'X';
const FRAME_RUN_RUSTC: u8 = b'R';
const FRAME_COMPILE_MISS: u8 = b'M';
// Sent by the program's own commands (waiting for a build's stores, `daemon status`), never by a
// front door: named all the same, so that a new frame type is met here too.
#[allow(dead_code)]
const FRAME_SETTLE: u8 = b'W';
#[allow(dead_code)]
const FRAME_STATUS: u8 = b'I';

fn main() {
    if let Some(real) = replayed_build_script() {
        replay_build_script(real);
    }
    let args: Vec<OsString> = env::args_os().skip(1).collect();
    // A compiler call by the rule of isCompiler in src/cli/main.ts.
    let is_compiler = args.first().and_then(|a| a.to_str()).map_or(false, is_compiler_call);
    if !is_compiler {
        // Manager commands (`cargo warmup status` …) belong to the program itself; without it,
        // saying so is all a front door can do.
        let error = Command::new(PROGRAM).args(&args).exec();
        eprintln!(
            "error: cargo-warmup: cannot run \"{}\", the program this front door was built for: \
             {}",
            PROGRAM, error
        );
        exit(1);
    }
    if daemon_off() {
        serve_in_process(&args);
    }
    let dir = runtime_dir();
    if !private_dir(&dir) {
        serve_in_process(&args);
    }
    let socket = dir.join(format!("daemon-{}.sock", TAG));
    let stream = match owned_by_us(&socket).then(|| UnixStream::connect(&socket)) {
        Some(Ok(stream)) => stream,
        _ => match start_daemon(&dir).and_then(|spawn| wait_for_daemon(&socket, spawn)) {
            Some(stream) => stream,
            None => serve_in_process(&args),
        },
    };
    let request = match request_json(&args) {
        Some(json) => json,
        None => serve_in_process(&args), // not UTF-8: the daemon speaks JSON
    };
    talk(stream, &args, request.as_bytes());
}

/// Whether a wrapper's first argument is a compiler (cargo runs `RUSTC_WRAPPER <rustc> args…`)
/// rather than a manager command (`cargo-warmup status`): a path, or a rustc or clippy-driver.
fn is_compiler_call(first: &str) -> bool {
    let name = first.rsplit('/').next().unwrap_or(first);
    !first.starts_with('-')
        && (first.contains('/') || name.contains("rustc") || name.contains("clippy-driver"))
}

/// Whether CARGO_WARMUP_DAEMON turns the daemon off, by the words every switch uses
/// (envFlag in src/config/settings.ts): then every call serves itself in a process of its own.
fn daemon_off() -> bool {
    matches!(
        env::var("CARGO_WARMUP_DAEMON").as_deref(),
        Ok("0") | Ok("false") | Ok("no") | Ok("off")
    )
}

/// The real binary when this program was started as a registry crate's build script (cargo runs
/// `build-script-*`; src/dispatch/replayer.ts put this front door there and the real binary beside
/// it), else None.
fn replayed_build_script() -> Option<PathBuf> {
    let started_as = PathBuf::from(env::args_os().next()?);
    let name = started_as.file_name()?.to_str()?;
    if !name.starts_with("build-script-") && !name.starts_with("build_script_") {
        return None;
    }
    Some(started_as.with_file_name(REAL_BUILD_SCRIPT))
}

/// The replayer: asks the daemon for the build script's run, relaying a served one; runs the real
/// script on a miss (the daemon stores it) and whenever no daemon of this version answers.
fn replay_build_script(real: PathBuf) -> ! {
    let mut args: Vec<OsString> = vec![real.clone().into_os_string()];
    args.extend(env::args_os().skip(1));
    let dir = runtime_dir();
    let socket = dir.join(format!("daemon-{}.sock", TAG));
    let stream = (!daemon_off() && private_dir(&dir) && owned_by_us(&socket))
        .then(|| UnixStream::connect(&socket).ok())
        .flatten();
    let (stream, request) = match (stream, request_json(&args)) {
        (Some(stream), Some(request)) => (stream, request),
        _ => exec_or_die(&mut rustc_command(&args), &real.to_string_lossy()),
    };
    talk(stream, &args, request.as_bytes())
}

/// Sends the request and relays the answer; never returns. A daemon slower than
/// CARGO_WARMUP_DAEMON_TIMEOUT_MS (default 60 s) to read or answer is given up on.
fn talk(mut stream: UnixStream, args: &[OsString], request: &[u8]) -> ! {
    let timeout = env::var("CARGO_WARMUP_DAEMON_TIMEOUT_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .unwrap_or(60_000u64);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(timeout)));
    let _ = stream.set_write_timeout(Some(Duration::from_millis(timeout)));
    let mut relayed_rmeta = false;
    if write_frame(&mut stream, FRAME_REQUEST, request).is_ok() {
        let mut reader = BufReader::new(match stream.try_clone() {
            Ok(s) => s,
            Err(_) => run_rustc_after(args, false),
        });
        loop {
            let (kind, payload) = match read_frame(&mut reader) {
                Some(frame) => frame,
                None => break,
            };
            match kind {
                FRAME_STDOUT => relay(&mut io::stdout(), &payload),
                FRAME_STDERR => {
                    relayed_rmeta |= payload.split(|&b| b == b'\n').any(is_rmeta_notice);
                    relay(&mut io::stderr(), &payload);
                }
                FRAME_SERVED => {
                    let code = String::from_utf8_lossy(&payload)
                        .trim()
                        .parse()
                        .unwrap_or(1);
                    let _ = io::stdout().flush();
                    exit(code);
                }
                FRAME_RUN_RUSTC if !relayed_rmeta => {
                    exec_or_die(&mut rustc_command(args), &args[0].to_string_lossy())
                }
                // rustc announces the rmeta itself: only if the daemon has not.
                FRAME_COMPILE_MISS if !relayed_rmeta => {
                    compile_miss(stream, args, payload == b"hold")
                }
                _ => break, // an answer out of place: the daemon is broken
            }
        }
    }
    // The daemon died, hung or answered garbage before the call was served: compile it here.
    run_rustc_after(args, relayed_rmeta)
}

/// A miss: run rustc (or a build script), streaming its output as it comes (cargo pipelines on
/// the rmeta notice), then hand its output and exit to the daemon, which stores the bundle after
/// we have exited. With `hold` (`M` said "hold"), wait until the daemon lets go first: it puts a
/// replayer in front of a build script, or reads a run's OUT_DIR.
fn compile_miss(mut stream: UnixStream, args: &[OsString], hold: bool) -> ! {
    let started = Instant::now();
    let mut child = match rustc_command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(error) => die(&args[0].to_string_lossy(), &error),
    };
    let stderr = child
        .stderr
        .take()
        .map(|pipe| thread::spawn(move || tee(pipe, io::stderr())));
    let stdout = child
        .stdout
        .take()
        .map(|pipe| tee(pipe, io::stdout()))
        .unwrap_or_default();
    let stderr = stderr.and_then(|t| t.join().ok()).unwrap_or_default();
    let status = child.wait().ok();
    let code = status.map_or(1, exit_code);
    let done = format!(
        "{{\"code\":{},\"ms\":{}}}",
        code,
        started.elapsed().as_secs_f64() * 1000.0
    );
    let reported = write_frame(&mut stream, FRAME_MISS_STDOUT, &stdout)
        .and_then(|_| write_frame(&mut stream, FRAME_MISS_STDERR, &stderr))
        .and_then(|_| write_frame(&mut stream, FRAME_MISS_DONE, done.as_bytes()));
    let _ = stream.shutdown(std::net::Shutdown::Write);
    if hold && reported.is_ok() {
        // Any frame, the end of the stream or the timeout: the outputs are final either way.
        let _ = read_frame(&mut stream);
    }
    exit_like(status);
}

/// Runs rustc without the daemon. If the daemon already relayed the rmeta notice, rustc's own is
/// dropped: cargo must hear of the rmeta once.
fn run_rustc_after(args: &[OsString], relayed_rmeta: bool) -> ! {
    let mut command = rustc_command(args);
    if !relayed_rmeta {
        exec_or_die(&mut command, &args[0].to_string_lossy());
    }
    let mut child = match command.stderr(Stdio::piped()).spawn() {
        Ok(child) => child,
        Err(error) => die(&args[0].to_string_lossy(), &error),
    };
    if let Some(pipe) = child.stderr.take() {
        let mut err = io::stderr();
        for line in BufReader::new(pipe).split(b'\n').flatten() {
            if !is_rmeta_notice(&line) {
                let _ = err.write_all(&line).and_then(|_| err.write_all(b"\n"));
            }
        }
    }
    exit_like(child.wait().ok());
}

fn is_rmeta_notice(line: &[u8]) -> bool {
    let text = String::from_utf8_lossy(line);
    text.contains("\"$message_type\":\"artifact\"") && text.contains("\"emit\":\"metadata\"")
}

fn rustc_command(args: &[OsString]) -> Command {
    let mut command = Command::new(&args[0]);
    command.args(&args[1..]);
    command
}

/// Copies `pipe` to `sink` chunk by chunk, flushing each, and returns everything copied.
fn tee(mut pipe: impl Read, mut sink: impl Write) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut chunk = [0u8; 64 * 1024];
    while let Ok(read) = pipe.read(&mut chunk) {
        if read == 0 {
            break;
        }
        let _ = sink.write_all(&chunk[..read]).and_then(|_| sink.flush());
        kept.extend_from_slice(&chunk[..read]);
    }
    kept
}

fn relay(sink: &mut impl Write, bytes: &[u8]) {
    let _ = sink.write_all(bytes).and_then(|_| sink.flush());
}

fn exit_code(status: ExitStatus) -> i32 {
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(1))
}

/// Ends this process as the compiler (or build script) ended: with its exit code, or killed by
/// the same signal, so cargo tells a crash or an OOM kill (`signal: 9, SIGKILL`) from an error.
fn exit_like(status: Option<ExitStatus>) -> ! {
    let _ = io::stdout().flush();
    let status = match status {
        Some(status) => status,
        None => exit(1),
    };
    if let Some(number) = status.signal() {
        unsafe {
            // Our core would say nothing of the crash, and could overwrite the compiler's `core`.
            setrlimit(RLIMIT_CORE, &[0, 0]);
            // Rust starts with SIGPIPE ignored: an ignored or handled signal would not end us.
            signal(number, SIG_DFL);
            raise(number);
        }
    }
    // Still alive (the signal is blocked here): the shell's convention for a signal death.
    exit(exit_code(status))
}

/// Lets the program serve this call itself (CARGO_WARMUP_IN_PROCESS stops it coming back here).
/// When the program cannot be started (a moved checkout, an uninstalled binary), the compiler
/// runs as if there were no wrapper: a stale front door slows builds, it never fails them.
fn serve_in_process(args: &[OsString]) -> ! {
    let error = Command::new(PROGRAM)
        .args(args)
        .env("CARGO_WARMUP_IN_PROCESS", "1")
        .exec();
    // Said for the build's own crates only: cargo shows their output, and it would otherwise be
    // said once for every dependency.
    if env::var_os("CARGO_PRIMARY_PACKAGE").is_some() {
        let _ = writeln!(
            io::stderr(),
            "warning: cargo-warmup: cannot run \"{}\": {}; compiling without the cache (build \
             the front door again with `cargo-warmup frontdoor`, or unset RUSTC_WRAPPER)",
            PROGRAM,
            error
        );
    }
    exec_or_die(&mut rustc_command(args), &args[0].to_string_lossy())
}

fn exec_or_die(command: &mut Command, what: &str) -> ! {
    let error = command.exec();
    die(what, &error)
}

fn die(what: &str, error: &io::Error) -> ! {
    eprintln!("error: cargo-warmup: cannot run \"{}\": {}", what, error);
    exit(1)
}

/// CARGO_WARMUP_RUNTIME_DIR, else $XDG_RUNTIME_DIR/cargo-warmup, else /tmp/cargo-warmup-<uid>
/// (the same rule as src/runtime_dir.ts).
fn runtime_dir() -> PathBuf {
    match env::var_os("CARGO_WARMUP_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => match env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
            Some(dir) => PathBuf::from(dir).join("cargo-warmup"),
            None => PathBuf::from(format!("/tmp/cargo-warmup-{}", uid())),
        },
    }
}

fn uid() -> u32 {
    fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(u32::MAX)
}

/// Whether `dir` is ours alone (created so if missing): nobody else may plant or read a socket.
fn private_dir(dir: &PathBuf) -> bool {
    let _ = fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir);
    match fs::symlink_metadata(dir) {
        Ok(meta) => meta.is_dir() && meta.uid() == uid() && meta.permissions().mode() & 0o077 == 0,
        Err(_) => false,
    }
}

fn owned_by_us(path: &PathBuf) -> bool {
    fs::symlink_metadata(path).map_or(false, |meta| meta.uid() == uid())
}

/// A daemon spawned recently: when, and how to tell it is gone: this call's child, or the pid
/// another call wrote into the stamp (absent when the stamp does not tell).
struct Spawn {
    at: SystemTime,
    child: Option<std::process::Child>,
    pid: Option<c_int>,
}

/// Connects to the daemon of `spawn` once it listens, waiting at most until STARTUP_WAIT_MS after
/// the spawn; None when it does not come up by then, or its process is gone.
fn wait_for_daemon(socket: &PathBuf, mut spawn: Spawn) -> Option<UnixStream> {
    let wait = Duration::from_millis(
        env::var("CARGO_WARMUP_DAEMON_STARTUP_MS")
            .ok()
            .and_then(|ms| ms.parse().ok())
            .unwrap_or(STARTUP_WAIT_MS),
    );
    loop {
        if owned_by_us(socket) {
            if let Ok(stream) = UnixStream::connect(socket) {
                return Some(stream);
            }
        }
        let waited = SystemTime::now().duration_since(spawn.at).unwrap_or(wait);
        // Our own child is reaped (a dead one would stay a zombie); another call's is looked up.
        let gone = match spawn.child.as_mut() {
            Some(child) => !matches!(child.try_wait(), Ok(None)),
            None => spawn.pid.map_or(false, |pid| !process_alive(pid)),
        };
        if waited >= wait || gone {
            return None;
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// Whether process `pid` runs. A zombie does not: a daemon stopped or crashed stays one where
/// nothing reaps it (a container whose first process reaps no orphans), and signal 0 finds it.
fn process_alive(pid: c_int) -> bool {
    match fs::read_to_string(format!("/proc/{}/stat", pid)) {
        // The state follows the command name, which is in parentheses and may hold anything.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .map_or(false, |state| state != 'Z' && state != 'X'),
        Err(_) if fs::metadata("/proc/self/stat").is_ok() => false,
        // No /proc (macOS): signal 0 only asks whether the process is there.
        Err(_) => (unsafe { kill(pid, 0) }) == 0,
    }
}

/// Starts the daemon detached, at most once per SPAWN_INTERVAL, and does not wait for it.
/// Returns the latest spawn, by this call or another, when it is recent.
fn start_daemon(dir: &PathBuf) -> Option<Spawn> {
    let stamp = dir.join(format!("spawn-{}.stamp", TAG));
    let last = fs::metadata(&stamp).and_then(|m| m.modified()).ok();
    let age = last.and_then(|t| SystemTime::now().duration_since(t).ok());
    if let (Some(at), Some(age)) = (last, age.filter(|age| *age < SPAWN_INTERVAL)) {
        // The spawning call writes the daemon's pid into the stamp. A daemon that is gone (one
        // stopped just now, one that failed) is started again, but not more often than
        // RESPAWN_AFTER: a daemon that dies on start must not be started by every call.
        let pid: Option<c_int> =
            fs::read_to_string(&stamp).ok().and_then(|text| text.trim().parse().ok());
        let alive = pid.map_or(true, process_alive);
        if alive {
            return Some(Spawn { at, child: None, pid });
        }
        if age < RESPAWN_AFTER {
            return None;
        }
    }
    if fs::write(&stamp, b"").is_err() {
        return None;
    }
    let jobserver = jobserver_fds();
    let mut command = Command::new(PROGRAM);
    command
        .args(["daemon", "run", "--tag", TAG, "--runtime-dir"])
        .arg(dir)
        .env("CARGO_WARMUP_IN_PROCESS", "1")
        .env_remove("CARGO_MAKEFLAGS")
        .env_remove("MAKEFLAGS")
        .env_remove("MFLAGS")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // The daemon outlives this build: it must not hold cargo's jobserver pipe open, nor be in
    // the terminal's process group, where a Ctrl-C on the build would stop it too.
    unsafe {
        command.pre_exec(move || {
            for &fd in &jobserver {
                drop(File::from_raw_fd(fd));
            }
            setsid();
            Ok(())
        });
    }
    match command.spawn() {
        Ok(child) => {
            let pid = child.id() as c_int;
            let _ = fs::write(&stamp, pid.to_string());
            Some(Spawn { at: SystemTime::now(), child: Some(child), pid: Some(pid) })
        }
        // Nothing to wait for; the next call may try again at once (a missing program fails fast).
        Err(_) => {
            let _ = fs::remove_file(&stamp);
            None
        }
    }
}

/// The file descriptors of a pipe jobserver (`--jobserver-auth=R,W`), if cargo passed one.
fn jobserver_fds() -> Vec<i32> {
    jobserver_fds_in(
        ["CARGO_MAKEFLAGS", "MAKEFLAGS", "MFLAGS"]
            .iter()
            .filter_map(|name| env::var(name).ok()),
    )
}

/// The pipe jobserver's file descriptors named in make flags; never stdin, stdout or stderr.
fn jobserver_fds_in(makeflags: impl Iterator<Item = String>) -> Vec<i32> {
    makeflags
        .flat_map(|flags| {
            flags
                .split_whitespace()
                .filter_map(|flag| {
                    flag.strip_prefix("--jobserver-auth=")
                        .or_else(|| flag.strip_prefix("--jobserver-fds="))
                        .map(str::to_owned)
                })
                .collect::<Vec<_>>()
        })
        .flat_map(|pair| {
            pair.split(',')
                .filter_map(|fd| fd.parse::<i32>().ok())
                .collect::<Vec<_>>()
        })
        .filter(|&fd| fd > 2)
        .collect()
}

/// The request as JSON, or None when anything in it is not UTF-8.
fn request_json(args: &[OsString]) -> Option<String> {
    let mut json = format!("{{\"v\":1,\"tag\":{},\"argv\":[", quote(TAG));
    for (i, arg) in args.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        json.push_str(&quote(arg.to_str()?));
    }
    let cwd = env::current_dir().ok()?;
    json.push_str(&format!(
        "],\"cwd\":{},\"ppid\":{},\"env\":{{",
        quote(cwd.to_str()?),
        std::os::unix::process::parent_id()
    ));
    for (i, (name, value)) in env::vars_os().enumerate() {
        if i > 0 {
            json.push(',');
        }
        json.push_str(&format!(
            "{}:{}",
            quote(name.to_str()?),
            quote(value.to_str()?)
        ));
    }
    json.push_str("}}");
    Some(json)
}

fn quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            c if (c as u32) < 0x20 => quoted.push_str(&format!("\\u{:04x}", c as u32)),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

fn write_frame(stream: &mut impl Write, kind: u8, payload: &[u8]) -> io::Result<()> {
    let mut frame = Vec::with_capacity(5 + payload.len());
    frame.push(kind);
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(payload);
    stream.write_all(&frame)
}

/// The next frame, or None at the end of the stream, on a timeout or on a malformed frame.
fn read_frame(reader: &mut impl Read) -> Option<(u8, Vec<u8>)> {
    let mut header = [0u8; 5];
    reader.read_exact(&mut header).ok()?;
    let length = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    if length > MAX_PAYLOAD {
        return None;
    }
    let mut payload = vec![0u8; length];
    reader.read_exact(&mut payload).ok()?;
    Some((header[0], payload))
}

// The pure functions, as `cargo test` would run them: tests/cargo_warmup_rs_test.ts compiles this
// file with `rustc --test` and runs the result.
#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn quote_escapes_what_json_must_and_keeps_the_rest() {
        assert_eq!(quote("plain -C opt-level=2"), r#""plain -C opt-level=2""#);
        assert_eq!(quote(r#"say "hi"\now"#), r#""say \"hi\"\\now""#);
        assert_eq!(quote("a\tb\nc\u{1}\u{1f}"), r#""a\u0009b\u000ac\u0001\u001f""#);
        // Not a control character for JSON, and any other text stays as it is.
        assert_eq!(quote("\u{7f} é ✓ 🦀 /"), "\"\u{7f} é ✓ 🦀 /\"");
        assert_eq!(quote(""), r#""""#);
    }

    #[test]
    fn jobserver_fds_come_from_either_spelling_and_never_name_stdio() {
        let fds = |flags: &[&str]| jobserver_fds_in(flags.iter().map(|flag| flag.to_string()));
        assert_eq!(fds(&["-j8 --jobserver-auth=3,4"]), vec![3, 4]);
        assert_eq!(fds(&["--jobserver-fds=7,8 -j --"]), vec![7, 8]);
        assert_eq!(fds(&["", "--jobserver-auth=5,6"]), vec![5, 6]);
        // A fifo jobserver holds no descriptor; stdio is never one to close in the daemon.
        assert_eq!(fds(&["--jobserver-auth=fifo:/tmp/GMfifo1"]), Vec::<i32>::new());
        assert_eq!(fds(&["--jobserver-auth=0,1", "--jobserver-fds=2,9"]), vec![9]);
        assert_eq!(fds(&["-j4", "--jobserver-authx=3,4"]), Vec::<i32>::new());
    }

    #[test]
    fn a_frame_is_a_kind_a_big_endian_length_and_the_payload() {
        let mut bytes = Vec::new();
        write_frame(&mut bytes, FRAME_REQUEST, b"{}").unwrap();
        assert_eq!(bytes, [FRAME_REQUEST, 0, 0, 0, 2, b'{', b'}']);
        write_frame(&mut bytes, FRAME_STDERR, &[]).unwrap();
        let mut reader = Cursor::new(bytes);
        assert_eq!(read_frame(&mut reader), Some((FRAME_REQUEST, b"{}".to_vec())));
        assert_eq!(read_frame(&mut reader), Some((FRAME_STDERR, Vec::new())));
        assert_eq!(read_frame(&mut reader), None, "the end of the stream");
    }

    #[test]
    fn a_truncated_or_oversized_frame_reads_as_none() {
        let short_header = [FRAME_STDOUT, 0, 0];
        assert_eq!(read_frame(&mut Cursor::new(short_header)), None, "a short header");
        let short_body = [FRAME_STDOUT, 0, 0, 0, 3, 1, 2];
        assert_eq!(read_frame(&mut Cursor::new(short_body)), None, "a short body");
        // Over the largest payload: refused from its header, before a byte of it is read.
        struct Endless(usize);
        impl Read for Endless {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.0 += buf.len();
                Ok(buf.len())
            }
        }
        let over = (MAX_PAYLOAD as u32 + 1).to_be_bytes();
        let mut body = Endless(0);
        let header = [FRAME_STDOUT, over[0], over[1], over[2], over[3]];
        let mut frame = Cursor::new(header).chain(&mut body);
        assert_eq!(read_frame(&mut frame), None, "over the largest payload");
        assert_eq!(body.0, 0, "read from a frame over the largest payload");
    }

    #[test]
    fn a_compiler_call_is_a_path_or_a_rustc_not_a_command_or_a_flag() {
        for compiler in ["rustc", "/usr/bin/rustc", "./rustc-wrapped", "clippy-driver", "/x/y"] {
            assert!(is_compiler_call(compiler), "{compiler}");
        }
        for command in ["status", "init", "daemon", "--version", "-vV", "-/rustc", ""] {
            assert!(!is_compiler_call(command), "{command}");
        }
    }

    #[test]
    fn only_an_artifact_notice_for_metadata_is_the_rmeta_notice() {
        let rmeta = br#"{"$message_type":"artifact","artifact":"/t/libx.rmeta","emit":"metadata"}"#;
        let rlib = br#"{"$message_type":"artifact","artifact":"/t/libx.rlib","emit":"link"}"#;
        let diagnostic = br#"{"$message_type":"diagnostic","message":"\"emit\":\"metadata\""}"#;
        assert!(is_rmeta_notice(rmeta));
        assert!(!is_rmeta_notice(rlib));
        assert!(!is_rmeta_notice(diagnostic));
    }

    #[test]
    fn an_exit_code_is_the_code_or_128_plus_the_signal() {
        assert_eq!(exit_code(ExitStatus::from_raw(0)), 0);
        assert_eq!(exit_code(ExitStatus::from_raw(101 << 8)), 101);
        assert_eq!(exit_code(ExitStatus::from_raw(9)), 128 + 9, "killed by SIGKILL");
    }

    #[test]
    fn tee_copies_every_byte_and_keeps_them() {
        let input: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut sink = Vec::new();
        assert_eq!(tee(Cursor::new(input.clone()), &mut sink), input);
        assert_eq!(sink, input);
    }
}
