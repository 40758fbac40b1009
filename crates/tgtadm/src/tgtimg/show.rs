//! `tgtimg --op show`: a tape's barcode, type and serial number, then each block header from the
//! beginning of the tape to its end of data, in tgtimg's words and layout.

use super::exit::{fail, Exit};
use rtgt_backstore::tape::{BlockHeader, BlockKind, MediumType, TapeError, TapeImage, FORMAT_VERSION};
use std::path::Path;

fn type_name(medium: MediumType) -> &'static str {
    match medium {
        MediumType::Unspecified => "Unspecified",
        MediumType::Data => "Data",
        MediumType::Cleaning => "Cleaning",
        MediumType::Diagnostics => "Diagnostics",
        MediumType::Worm => "WORM",
        MediumType::Microcode => "Microcode",
        MediumType::Other(_) => "Unknown",
    }
}

/// One header line as tgtimg prints it.
pub(crate) fn header_line(h: &BlockHeader) -> String {
    let label = match h.kind {
        BlockKind::Data => " Uncompressed data",
        BlockKind::Filemark => "         Filemark",
        BlockKind::Bot => "Beginning of Tape",
        BlockKind::Eod => "      End of Data",
    };
    let code = h.kind.type_code();
    if h.kind == BlockKind::Bot {
        format!(
            "{label}({code}): Capacity {} MB, Blk No.: {}, prev {}, curr {}, next {}",
            h.block_len as i32, h.number, h.prev, h.curr, h.next
        )
    } else {
        format!(
            "{label}({code}): Blk No. {}, prev {}, curr {},  next {}, sz {}",
            h.number, h.prev, h.curr, h.next, h.ondisk_len as i32
        )
    }
}

/// `seconds` as ctime(3) writes it, in local time: "Sun Dec  6 22:55:47 2026".
fn ctime(seconds: i64) -> String {
    let t: libc::time_t = seconds as libc::time_t;
    // SAFETY: `tm` is a plain C struct for which all-zero bytes are a valid value.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are to live locals of the right types; localtime_r writes only `tm`.
    if unsafe { libc::localtime_r(&t, &mut tm) }.is_null() {
        return String::from("?");
    }
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    format!(
        "{} {} {:2} {:02}:{:02}:{:02} {}",
        DAYS[tm.tm_wday.rem_euclid(7) as usize],
        MONTHS[tm.tm_mon.rem_euclid(12) as usize],
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        i64::from(tm.tm_year) + 1900
    )
}

/// The creation time in a serial number `BARCODE_SECONDS`, as tgtimg finds it (after the last
/// underscore, read as atoll does).
pub(super) fn created(serial: &str) -> Option<i64> {
    let at = serial.rfind('_').filter(|&a| a > 0)?;
    let digits: String = serial[at + 1..].chars().take_while(|c| c.is_ascii_digit() || *c == '-').collect();
    Some(digits.parse().unwrap_or(0))
}

pub(super) fn show(path: &Path) -> Result<(), Exit> {
    let mut image = match TapeImage::open(path, true) {
        Ok(image) => image,
        Err(TapeError::Open { source, .. }) => {
            return Err(fail(&format!("can't open {}, {}", path.display(), io_text(&source)), 1));
        }
        Err(TapeError::NotATape(why)) if why.starts_with("unknown media format version") => {
            println!("Unknown media format version {:x}", version_of(path));
            return Err(Exit(1));
        }
        Err(e) => {
            eprintln!("Could not read blk header: {e}");
            return Err(Exit(1));
        }
    };
    let mam = image.mam();
    println!("Media     : {}", mam.barcode());
    println!(" type     : {}", type_name(mam.medium_type()));
    let serial = mam.serial_number();
    print!("Media serial number : {serial}, ");
    if let Some(secs) = created(&serial) {
        println!("created {}", ctime(secs));
    }
    println!();
    println!("{}", header_line(image.bot()));
    loop {
        println!("{}", header_line(image.current()));
        match image.forward() {
            Ok(rtgt_backstore::tape::Object::EndOfData) => return Ok(()),
            Ok(_) => {}
            Err(e) => {
                println!("Could not read complete blk header - short read!!");
                eprintln!("tgtimg: {e}");
                return Ok(());
            }
        }
    }
}

/// The message strerror gives (without Rust's " (os error N)").
fn io_text(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

/// The format version word of a file whose version is not the one understood.
fn version_of(path: &Path) -> u32 {
    use std::os::unix::fs::FileExt;
    let mut word = [0u8; 4];
    let read = std::fs::File::open(path).and_then(|f| f.read_exact_at(&mut word, 48));
    if read.is_ok() {
        u32::from_be_bytes(word)
    } else {
        FORMAT_VERSION
    }
}
