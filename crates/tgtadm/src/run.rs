//! tgtadm's run: parses tgt's command line into a typed request, sends it to tgtd over the control
//! socket, and prints the reply in tgt's layout (or as JSON). The binary only calls `main`.

use crate::cli::{self, Command};
use crate::{client, help, render};
use std::io::Write;
use std::process::ExitCode;

/// The whole of the `tgtadm` binary: arguments from the process, exit status to it.
pub fn main() -> ExitCode {
    let mut argv = Vec::new();
    for arg in std::env::args_os().skip(1) {
        match arg.into_string() {
            Ok(a) => argv.push(a),
            Err(raw) => {
                eprintln!("tgtadm: argument {raw:?} is not valid UTF-8");
                return ExitCode::from(22);
            }
        }
    }
    exit(run(&argv, std::env::var(cli::SOCKET_ENV).ok()))
}

fn exit(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// Everything but process concerns: returns the exit status.
pub fn run(argv: &[String], env_socket: Option<String>) -> i32 {
    // Known before parsing, so that even a command-line mistake answers in JSON.
    let wants_json = argv.iter().any(|a| a == "--json");
    let command = match cli::parse(argv, env_socket) {
        Ok(c) => c,
        // A refused value answers as the daemon's refusal of it would.
        Err(cli::CliError { refusal: Some(err), .. }) => return print_refusal(&err, wants_json),
        Err(e) if wants_json => {
            let message = e.message.strip_prefix("tgtadm: ").unwrap_or(&e.message);
            print_json_error("usage", message, None);
            return e.exit_code;
        }
        Err(e) => {
            eprintln!("{}", e.message);
            if e.hint {
                eprintln!("Try `tgtadm --help' for more information.");
            }
            return e.exit_code;
        }
    };
    let (socket, request, json, wait) = match command {
        Command::Help => {
            print!("{}", help::usage());
            return 0;
        }
        Command::Version => {
            println!("{} (rtgt {})", help::TGT_COMPAT_VERSION, env!("CARGO_PKG_VERSION"));
            return 0;
        }
        Command::Send { socket, request, json, wait } => (socket, request, json, wait),
    };
    // tgt answers `target show --tid N` with the target's parameters, not its full description.
    let params_only = matches!(request.op, rtgt_mgmt::Op::Target(rtgt_mgmt::TargetOp::Show { tid: Some(_) }));
    // rtgt's session show adds each session's negotiated parameters to conn show's layout.
    let session_show = matches!(request.op, rtgt_mgmt::Op::Session(rtgt_mgmt::SessionOp::Show { .. }));
    let response = match client::call(&socket, &request, wait) {
        Ok(r) => r,
        Err(e) if json => {
            print_json_error("not_connected", &e.to_string(), None);
            return client::EXIT_NOT_CONNECTED;
        }
        Err(e) => {
            eprintln!("tgtadm: {e}");
            return client::EXIT_NOT_CONNECTED;
        }
    };
    match response.into_result() {
        Ok(reply) => {
            let text = if json {
                match reply {
                    rtgt_mgmt::Reply::Done => String::new(),
                    other => match serde_json::to_string_pretty(&other) {
                        Ok(s) => s + "\n",
                        Err(e) => {
                            eprintln!("tgtadm: cannot print the reply as JSON: {e}");
                            return 1;
                        }
                    },
                }
            } else if let (true, rtgt_mgmt::Reply::TargetList(targets)) = (params_only, &reply) {
                targets.iter().map(render::target_params::target_params).collect()
            } else if let (true, rtgt_mgmt::Reply::Sessions(list)) = (session_show, &reply) {
                render::session::sessions(list, true)
            } else {
                render::render(&reply)
            };
            let mut stdout = std::io::stdout().lock();
            // A closed pipe (tgtadm ... | head) is not worth a panic.
            let _ = stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush());
            0
        }
        Err(err) => print_refusal(&err, json),
    }
}

/// A refusal (the daemon's, or tgtadm's own of a value it checks): returns the exit status.
fn print_refusal(err: &rtgt_mgmt::MgmtError, json: bool) -> i32 {
    let detail = err.message.as_deref().filter(|d| !d.is_empty());
    if json {
        let code = serde_json::to_value(err.code).ok().and_then(|v| v.as_str().map(str::to_string));
        print_json_error(code.as_deref().unwrap_or("unknown"), err.code.text(), detail);
    } else {
        // tgt's line exactly as tgt prints it, for scripts that match it; rtgt's detail on
        // a line of its own after it.
        eprintln!("tgtadm: {}", err.code.text());
        if let Some(detail) = detail {
            eprintln!("tgtadm: {detail}");
        }
    }
    err.code.exit_code()
}

/// Under `--json` a failure is a JSON object on stdout too:
/// `{"error": {"code": "no_target", "message": "can't find the target", "detail": ...}}`, `code`
/// being the daemon's error code (or `usage`, `not_connected`) and `message` tgt's text.
fn print_json_error(code: &str, message: &str, detail: Option<&str>) {
    let mut error = serde_json::json!({ "code": code, "message": message });
    if let Some(detail) = detail {
        error["detail"] = detail.into();
    }
    let text = serde_json::json!({ "error": error });
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{text:#}").and_then(|()| stdout.flush());
}
