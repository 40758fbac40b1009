//! tgtimg: tgt's image file utility, with its command line, output and exit codes. It makes tape
//! images in tgt's format (`rtgt_backstore::tape`, so its tapes and tgt's are interchangeable),
//! shows a tape's contents block by block, and makes blank DVD+R and disk image files.
//!
//! Options as glibc's getopt_long takes them: `--op new`, `--op=new`, `-o new`, `-onew`.

mod exit;
mod show;

use exit::{fail, Exit};
use rtgt_backstore::tape::{MediumType, NewTape, TapeImage, FIRST_HEADER, HEADER_LEN};
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

const EINVAL: u8 = 22;

const USAGE: &str = "Usage: tgtimg [OPTION]
Linux SCSI Target Framework Image File Utility, version 1.0.85

  --op new --device-type tape --barcode=[code] --size=[size] --type=[type] --file=[path] [--thin-provisioning]
\t\t\tcreate a new tape image file.
\t\t\t[code] is a string of chars.
\t\t\t[size] is media size(in megabytes).
\t\t\t[type] is media type 
\t\t\t\t(data, clean or WORM) for tape devices
\t\t\t\t(dvd+r) for cd devices
\t\t\t\t(disk) for disk devices
\t\t\t[path] is a newly created file
  --op show --device-type tape --file=[path]
\t\t\tdump the tape image file contents.
\t\t\t[path] is the tape image file
  --thin-provisioning   create a sparse file for the media
  --help                display this help and exit

Report bugs to <stgt@vger.kernel.org>.
";

/// tgtimg's usage error: the message, then where to find help; EINVAL.
fn usage_error(message: &str) -> Exit {
    eprintln!("tgtimg: {message}");
    eprintln!("Try `tgtimg --help' for more information.");
    Exit(EINVAL)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    New,
    Show,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Device {
    Tape,
    Cd,
    Disk,
}

#[derive(Debug, Default)]
struct Args {
    op: Option<Op>,
    device: Option<Device>,
    barcode: Option<String>,
    size: Option<String>,
    media_type: Option<String>,
    file: Option<String>,
    thin: bool,
    help: bool,
}

/// The options of tgtimg's getopt table: long name, short letter, whether it takes a value.
const OPTIONS: &[(&str, char, bool)] = &[
    ("help", 'h', false),
    ("op", 'o', true),
    ("device-type", 'Y', true),
    ("barcode", 'b', true),
    ("size", 's', true),
    ("type", 't', true),
    ("file", 'f', true),
    ("thin-provisioning", 'T', false),
];

fn set(args: &mut Args, letter: char, value: Option<String>) -> Result<(), Exit> {
    let value = value.unwrap_or_default();
    match letter {
        'h' => args.help = true,
        'T' => args.thin = true,
        'o' => {
            args.op = Some(match value.as_str() {
                "new" => Op::New,
                "show" => Op::Show,
                other => return Err(fail(&format!("unknown operation: {other}"), 1)),
            })
        }
        'Y' => {
            args.device = Some(match value.as_str() {
                "tape" => Device::Tape,
                "cd" => Device::Cd,
                "disk" => Device::Disk,
                other => return Err(fail(&format!("unknown target type: {other}"), EINVAL)),
            })
        }
        'b' => args.barcode = Some(value),
        's' => args.size = Some(value),
        't' => args.media_type = Some(value),
        _ => args.file = Some(value),
    }
    Ok(())
}

fn parse(argv: &[String]) -> Result<Args, Exit> {
    let mut args = Args::default();
    let mut i = 0;
    while i < argv.len() {
        let arg = &argv[i];
        i += 1;
        let (letter, takes, inline) = if let Some(long) = arg.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            // getopt_long accepts an unambiguous prefix of a long option.
            let found: Vec<_> = OPTIONS.iter().filter(|(n, _, _)| n.starts_with(name) && !name.is_empty()).collect();
            let exact = OPTIONS.iter().find(|(n, _, _)| *n == name);
            let Some(&(_, letter, takes)) = exact.or(if found.len() == 1 { Some(found[0]) } else { None }) else {
                return Err(usage_error(&format!("unrecognized option '{arg}'")));
            };
            (letter, takes, inline)
        } else if let Some(short) = arg.strip_prefix('-').filter(|s| !s.is_empty()) {
            let letter = short.chars().next().unwrap_or('?');
            let Some(&(_, _, takes)) = OPTIONS.iter().find(|(_, l, _)| *l == letter && letter != 'T') else {
                return Err(usage_error(&format!("invalid option -- '{letter}'")));
            };
            let rest = &short[letter.len_utf8()..];
            (letter, takes, (!rest.is_empty()).then(|| rest.to_string()))
        } else {
            return Err(usage_error(&format!("unrecognized option '{arg}'")));
        };
        let value = if takes {
            match inline {
                Some(v) => Some(v),
                None if i < argv.len() => {
                    i += 1;
                    Some(argv[i - 1].clone())
                }
                None => return Err(usage_error(&format!("option '{arg}' requires an argument"))),
            }
        } else {
            None
        };
        set(&mut args, letter, value)?;
        if args.help {
            print!("{USAGE}");
            return Err(Exit(0));
        }
    }
    Ok(args)
}

/// tgt compares media types by prefix, ignoring case (`strncasecmp`).
fn is(value: &str, name: &str) -> bool {
    value.len() >= name.len() && value[..name.len()].eq_ignore_ascii_case(name)
}

/// The leading decimal digits of `text`, as sscanf reads a number (0 when there are none).
fn number(text: &str) -> u64 {
    let digits: String = text.trim_start().chars().take_while(char::is_ascii_digit).collect();
    digits.parse().unwrap_or(0)
}

fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn tape(args: &Args, op: Op, path: &str) -> Result<(), Exit> {
    if op == Op::Show {
        return show::show(Path::new(path));
    }
    let Some(kind) = &args.media_type else { return Err(usage_error("Missing media type: WORM, CLEAN or DATA")) };
    if !(is(kind, "data") || is(kind, "clean") || is(kind, "worm")) {
        return Err(usage_error("Media type must be WORM, CLEAN or DATA for tape devices"));
    }
    let Some(barcode) = &args.barcode else { return Err(usage_error("Missing the barcode param")) };
    let Some(size) = &args.size else { return Err(usage_error("Missing the capacity param")) };
    let medium = if is(kind, "clean") {
        MediumType::Cleaning
    } else if is(kind, "worm") {
        MediumType::Worm
    } else {
        MediumType::Data
    };
    let capacity_mib = match number(size) {
        0 => 8000,
        n => n,
    };
    println!("blk_sz: {}, next {FIRST_HEADER}, {FIRST_HEADER}", capacity_mib as u32 as i32);
    println!("Sizeof(mam): {}, sizeof(h): {HEADER_LEN}", FIRST_HEADER - HEADER_LEN);
    let _ = std::io::stdout().flush();
    let new = NewTape { barcode: barcode.clone(), capacity_mib, medium, created_secs: now_secs() };
    TapeImage::create(Path::new(path), &new).map_err(|e| {
        eprintln!("Failed creating file: {e}");
        Exit(2)
    })
}

fn cd(args: &Args, op: Op, path: &str) -> Result<(), Exit> {
    if op != Op::New {
        return Err(usage_error("unknown the operation type"));
    }
    let Some(kind) = &args.media_type else { return Err(usage_error("Missing media type: DVD+R")) };
    if !is(kind, "dvd+r") {
        return Err(usage_error("Media type must be DVD+R for cd devices"));
    }
    create(path)?;
    println!("Created blank DVD+R image file : {path}");
    Ok(())
}

fn create(path: &str) -> Result<std::fs::File, Exit> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o660).open(path).map_err(|e| {
        eprintln!("Failed creating file: {e}");
        Exit(2)
    })
}

fn disk(args: &Args, op: Op, path: &str) -> Result<(), Exit> {
    if op != Op::New {
        return Err(usage_error("unknown the operation type"));
    }
    let Some(kind) = &args.media_type else { return Err(usage_error("Missing media type: DISK")) };
    if !is(kind, "disk") {
        return Err(usage_error("Media type must be DISK for disk devices"));
    }
    let Some(size) = &args.size else { return Err(usage_error("Missing the capacity param")) };
    let mib = number(size);
    if mib == 0 {
        println!("Capacity must be > 0");
        return Err(Exit(3));
    }
    let file = create(path)?;
    // A sparse file either way: the file system allocates on write (tgt preallocates unless
    // thin provisioning is asked for; an image file's contents are the same).
    file.set_len(mib.saturating_mul(1 << 20)).map_err(|e| {
        eprintln!("Failed to set file size: {e}");
        Exit(6)
    })?;
    println!("Created blank DISK image file : {path}");
    Ok(())
}

fn run(argv: &[String]) -> Result<(), Exit> {
    let args = parse(argv)?;
    let Some(op) = args.op else { return Err(usage_error("specify the operation type")) };
    let Some(path) = args.file.clone() else { return Err(usage_error("specify a newly created file")) };
    match args.device.unwrap_or(Device::Tape) {
        Device::Tape => tape(&args, op, &path),
        Device::Cd => cd(&args, op, &path),
        Device::Disk => disk(&args, op, &path),
    }
}

/// tgtimg itself.
pub fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    match run(&argv) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Exit(status)) => ExitCode::from(status),
    }
}

#[cfg(test)]
mod tests;
