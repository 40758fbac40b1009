//! tgt's /etc/tgt/targets.conf: `<target NAME>` blocks with their directives, `<backing-store PATH>`
//! and `<direct-store PATH>` sub-blocks, `include` (with shell-style wildcards, expanded by us, never
//! by a shell) and `default-driver`. Parsing only: the result is plain data with every directive's
//! file and line, checked as far as possible without the daemon, and a mistake anywhere is an error
//! naming file and line before anything is applied.

use std::fmt;
use std::path::{Path, PathBuf};

/// Where a directive came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: PathBuf,
    pub line: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: {message}")]
pub struct ConfError {
    pub origin: Origin,
    pub message: String,
}

/// One `key value` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    pub key: String,
    pub value: String,
    pub origin: Origin,
}

/// A `<backing-store>`/`<direct-store>` block or one-line directive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreBlock {
    pub path: String,
    pub direct: bool,
    pub directives: Vec<Directive>,
    pub origin: Origin,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetBlock {
    pub name: String,
    pub directives: Vec<Directive>,
    pub stores: Vec<StoreBlock>,
    pub origin: Origin,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfFile {
    pub default_driver: Option<String>,
    /// Directives outside any target (e.g. `incomingdiscoveryuser`).
    pub global: Vec<Directive>,
    pub targets: Vec<TargetBlock>,
}

/// How deep includes may nest (a file including itself would otherwise never end).
const MAX_INCLUDE_DEPTH: usize = 16;

/// Directives allowed inside a target block (outside a store block), lower-cased.
const TARGET_KEYS: &[&str] = &[
    "backing-store",
    "direct-store",
    "driver",
    "initiator-address",
    "initiator-name",
    "incominguser",
    "outgoinguser",
    "controller_tid",
    "allow-in-use",
];

/// Directives that describe a LUN: allowed in a store block, and in a target block as the default
/// for its stores.
pub const LUN_KEYS: &[&str] = &[
    "lun",
    "bs-type",
    "bsoflags",
    "bsopts",
    "block-size",
    "device-type",
    "vendor_id",
    "product_id",
    "product_rev",
    "scsi_id",
    "scsi_sn",
    "params",
    "readonly",
    "removable",
    "write-cache",
    "online",
    "mode_page",
    "sense_format",
    "thin_provisioning",
    "path",
];

/// iSCSI target parameters a target block may set, as tgt names them.
pub const TARGET_PARAMS: &[&str] = &[
    "MaxRecvDataSegmentLength",
    "MaxXmitDataSegmentLength",
    "HeaderDigest",
    "DataDigest",
    "InitialR2T",
    "MaxOutstandingR2T",
    "ImmediateData",
    "FirstBurstLength",
    "MaxBurstLength",
    "DataPDUInOrder",
    "DataSequenceInOrder",
    "ErrorRecoveryLevel",
    "DefaultTime2Wait",
    "DefaultTime2Retain",
    "MaxConnections",
    "MaxQueueCmd",
    "MaxSessions",
    "TargetAlias",
    "nop_interval",
    "nop_count",
];

const GLOBAL_KEYS: &[&str] = &[
    "default-driver",
    "include",
    "incomingdiscoveryuser",
    "outgoingdiscoveryuser",
    "ignore-errors",
    "isnsserverip",
    "isnsserverport",
    "isnsaccesscontrol",
    "isns",
];

/// The canonical spelling of a target parameter (tgt matches them case-insensitively).
pub fn target_param(key: &str) -> Option<&'static str> {
    TARGET_PARAMS.iter().copied().find(|p| p.eq_ignore_ascii_case(key))
}

enum Open {
    Target(TargetBlock),
    Store(TargetBlock, StoreBlock),
}

/// Read and parse `path`, following includes.
pub fn load(path: &Path) -> Result<ConfFile, ConfError> {
    let mut conf = ConfFile::default();
    load_into(path, &mut conf, 0, None)?;
    Ok(conf)
}

fn load_into(path: &Path, conf: &mut ConfFile, depth: usize, from: Option<&Origin>) -> Result<(), ConfError> {
    let here = || from.cloned().unwrap_or(Origin { file: path.to_path_buf(), line: 0 });
    if depth > MAX_INCLUDE_DEPTH {
        return Err(ConfError { origin: here(), message: "includes nest too deep (a loop?)".into() });
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfError { origin: here(), message: format!("cannot read {}: {e}", path.display()) })?;
    parse_into(&text, path, conf, depth)
}

/// Parse `text` (read from `file`) into `conf`.
pub fn parse_into(text: &str, file: &Path, conf: &mut ConfFile, depth: usize) -> Result<(), ConfError> {
    let mut open: Option<Open> = None;
    for (index, raw) in text.lines().enumerate() {
        let origin = Origin { file: file.to_path_buf(), line: index + 1 };
        let err = |message: String| ConfError { origin: origin.clone(), message };
        let line = strip_comment(raw).trim();
        if line.is_empty() {
            continue;
        }
        if let Some(tag) = line.strip_prefix("</") {
            let tag = tag.strip_suffix('>').ok_or_else(|| err(format!("malformed closing tag '{line}'")))?;
            open = match (open.take(), tag.trim().to_ascii_lowercase().as_str()) {
                (Some(Open::Target(t)), "target") => {
                    conf.targets.push(t);
                    None
                }
                (Some(Open::Store(mut t, s)), "backing-store" | "direct-store") => {
                    t.stores.push(s);
                    Some(Open::Target(t))
                }
                (_, other) => return Err(err(format!("unexpected </{other}>"))),
            };
            continue;
        }
        if let Some(tag) = line.strip_prefix('<') {
            let tag = tag.strip_suffix('>').ok_or_else(|| err(format!("malformed tag '{line}'")))?;
            let (kind, arg) = split_key(tag);
            let arg = &unquote(arg).map_err(err)?;
            if arg.is_empty() {
                return Err(err(format!("<{kind}> needs a name")));
            }
            open = match (open.take(), kind.to_ascii_lowercase().as_str()) {
                (None, "target") => Some(Open::Target(TargetBlock {
                    name: arg.to_string(),
                    directives: Vec::new(),
                    stores: Vec::new(),
                    origin: origin.clone(),
                })),
                (Some(Open::Target(t)), k @ ("backing-store" | "direct-store")) => {
                    let store = StoreBlock {
                        path: arg.to_string(),
                        direct: k == "direct-store",
                        directives: Vec::new(),
                        origin: origin.clone(),
                    };
                    Some(Open::Store(t, store))
                }
                (None, "backing-store" | "direct-store") => {
                    return Err(err(format!("<{kind}> outside a <target> block")))
                }
                (Some(_), "target") => return Err(err("<target> inside another block".into())),
                (_, other) => return Err(err(format!("unknown block <{other}>"))),
            };
            continue;
        }
        let (key, value) = split_key(line);
        let lower = key.to_ascii_lowercase();
        let value =
            &if WORD_KEYS.contains(&lower.as_str()) { value.to_string() } else { unquote(value).map_err(err)? };
        let directive = Directive { key: lower.clone(), value: value.to_string(), origin: origin.clone() };
        match &mut open {
            None => {
                if !GLOBAL_KEYS.contains(&lower.as_str()) {
                    return Err(err(format!("unknown directive '{key}' outside a <target> block")));
                }
                need_value(&directive)?;
                match lower.as_str() {
                    "default-driver" => {
                        check_driver(&directive)?;
                        conf.default_driver = Some(value.to_string());
                    }
                    "include" => include(value, file, conf, depth, &origin)?,
                    _ => conf.global.push(directive),
                }
            }
            Some(Open::Target(t)) => {
                if lower == "backing-store" || lower == "direct-store" {
                    need_value(&directive)?;
                    t.stores.push(StoreBlock {
                        path: value.to_string(),
                        direct: lower == "direct-store",
                        directives: Vec::new(),
                        origin: origin.clone(),
                    });
                } else if let Some(param) = target_param(key) {
                    need_value(&directive)?;
                    t.directives.push(Directive { key: param.to_string(), ..directive });
                } else if TARGET_KEYS.contains(&lower.as_str()) || LUN_KEYS.contains(&lower.as_str()) {
                    need_value(&directive)?;
                    if lower == "driver" {
                        check_driver(&directive)?;
                    }
                    t.directives.push(directive);
                } else {
                    return Err(err(format!("unknown directive '{key}' in <target {}>", t.name)));
                }
            }
            Some(Open::Store(_, s)) => {
                if !LUN_KEYS.contains(&lower.as_str()) {
                    return Err(err(format!("unknown directive '{key}' in <backing-store {}>", s.path)));
                }
                need_value(&directive)?;
                s.directives.push(directive);
            }
        }
    }
    match open {
        None => Ok(()),
        Some(Open::Target(t)) | Some(Open::Store(t, _)) => {
            Err(ConfError { origin: t.origin, message: format!("<target {}> is not closed", t.name) })
        }
    }
}

/// `#` starts a comment anywhere on a line, except inside a quoted word.
fn strip_comment(line: &str) -> &str {
    let mut quoted = false;
    let mut escaped = false;
    let mut word_start = true;
    for (i, c) in line.char_indices() {
        if quoted {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => quoted = false,
                _ => {}
            }
        } else if c == '#' {
            return &line[..i];
        } else if c == '"' && word_start {
            quoted = true;
        }
        word_start = c.is_whitespace();
    }
    line
}

/// The words of `text`, split at whitespace. A word that starts with `"` runs to the next
/// unescaped `"` and may hold spaces and `#`; inside it `\"`, `\\`, `\n`, `\t` and `\r` are escapes.
/// Quotes are how `--dump` writes values (user names, passwords) that would otherwise not survive.
pub fn words(text: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(first) = chars.next() else { return Ok(out) };
        let mut word = String::new();
        if first != '"' {
            word.push(first);
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                word.push(c);
            }
            out.push(word);
            continue;
        }
        loop {
            match chars.next() {
                None => return Err(format!("unterminated quote in '{text}'")),
                Some('"') => break,
                Some('\\') => match chars.next() {
                    Some('n') => word.push('\n'),
                    Some('t') => word.push('\t'),
                    Some('r') => word.push('\r'),
                    Some(c @ ('"' | '\\')) => word.push(c),
                    _ => return Err(format!("unknown escape in '{text}' (\\\" and \\\\ are known)")),
                },
                Some(c) => word.push(c),
            }
        }
        if chars.peek().is_some_and(|c| !c.is_whitespace()) {
            return Err(format!(
                "a quoted word must end before '{}' in '{text}'",
                chars.peek().copied().unwrap_or(' ')
            ));
        }
        out.push(word);
    }
}

/// A whole directive value: taken as written (inner spaces kept), or unquoted if it is one quoted
/// word.
pub fn unquote(text: &str) -> Result<String, String> {
    if !text.starts_with('"') {
        return Ok(text.to_string());
    }
    match words(text)?.as_slice() {
        [one] => Ok(one.clone()),
        _ => Err(format!("'{text}' must be one quoted value")),
    }
}

/// `value` as `words`/`unquote` read it back: quoted only if it must be.
pub fn quote(value: &str) -> String {
    let plain = !value.is_empty()
        && !value.starts_with('"')
        && !value.chars().any(|c| c.is_whitespace() || c.is_control() || c == '#');
    if plain {
        return value.to_string();
    }
    let mut out = String::from('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Directives whose value is a list of words (user and password): unquoted word by word later.
const WORD_KEYS: &[&str] =
    &["incominguser", "outgoinguser", "incomingdiscoveryuser", "outgoingdiscoveryuser", "initiator-address"];

/// `key value...`: the key, then the rest trimmed.
fn split_key(line: &str) -> (&str, &str) {
    match line.split_once(char::is_whitespace) {
        Some((k, v)) => (k, v.trim()),
        None => (line, ""),
    }
}

fn need_value(d: &Directive) -> Result<(), ConfError> {
    if d.value.is_empty() {
        return Err(ConfError { origin: d.origin.clone(), message: format!("'{}' needs a value", d.key) });
    }
    Ok(())
}

fn check_driver(d: &Directive) -> Result<(), ConfError> {
    if d.value != "iscsi" {
        return Err(ConfError {
            origin: d.origin.clone(),
            message: format!("driver '{}' is not supported (iscsi is)", d.value),
        });
    }
    Ok(())
}

/// `include PATTERN`: every matching file in name order; relative patterns are relative to the
/// including file's directory. The wildcard is matched here, not by a shell.
fn include(pattern: &str, file: &Path, conf: &mut ConfFile, depth: usize, origin: &Origin) -> Result<(), ConfError> {
    let base = file.parent().unwrap_or(Path::new("."));
    let full = if Path::new(pattern).is_absolute() { PathBuf::from(pattern) } else { base.join(pattern) };
    let full_text = full.to_string_lossy().into_owned();
    let paths: Vec<PathBuf> = if full_text.contains(['*', '?', '[']) {
        let entries = glob::glob(&full_text)
            .map_err(|e| ConfError { origin: origin.clone(), message: format!("bad include pattern: {e}") })?;
        let mut list: Vec<PathBuf> = entries.filter_map(Result::ok).filter(|p| p.is_file()).collect();
        list.sort();
        list
    } else {
        vec![full]
    };
    for path in paths {
        load_into(&path, conf, depth + 1, Some(origin))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ConfFile, ConfError> {
        let mut conf = ConfFile::default();
        parse_into(text, Path::new("t.conf"), &mut conf, 0).map(|()| conf)
    }

    #[test]
    fn blocks_and_directives() {
        let conf = parse(
            "default-driver iscsi\n\
             # a comment\n\
             <target iqn.2001-04.com.example:a>\n\
             \tbacking-store /srv/a.img   # trailing comment\n\
             \t<backing-store /srv/b.img>\n\
             \t\tlun 5\n\
             \t\tvendor_id ACME\n\
             \t</backing-store>\n\
             \tinitiator-address 10.0.0.0/8\n\
             \tincominguser alice pw1\n\
             \tmaxrecvdatasegmentlength 65536\n\
             </target>\n",
        )
        .unwrap();
        assert_eq!(conf.default_driver.as_deref(), Some("iscsi"));
        let t = &conf.targets[0];
        assert_eq!(t.name, "iqn.2001-04.com.example:a");
        assert_eq!(t.stores.len(), 2);
        assert_eq!(t.stores[1].directives[0].key, "lun");
        assert_eq!(t.stores[1].directives[1].value, "ACME");
        assert_eq!(t.directives[1].value, "alice pw1");
        assert_eq!(t.directives[2].key, "MaxRecvDataSegmentLength");
    }

    #[test]
    fn mistakes_name_file_and_line() {
        let e = parse("<target a>\n  frobnicate 1\n</target>\n").unwrap_err();
        assert_eq!(e.to_string(), "t.conf:2: unknown directive 'frobnicate' in <target a>");
        assert_eq!(parse("<target a>\n").unwrap_err().to_string(), "t.conf:1: <target a> is not closed");
        assert_eq!(parse("</target>\n").unwrap_err().origin.line, 1);
        assert_eq!(
            parse("lun 1\n").unwrap_err().to_string(),
            "t.conf:1: unknown directive 'lun' outside a <target> block"
        );
        assert!(parse("<target a>\n<target b>\n").unwrap_err().message.contains("inside"));
        assert!(parse("default-driver iser\n").unwrap_err().message.contains("not supported"));
        assert!(parse("<target a>\n<backing-store /x>\nincominguser a b\n</backing-store>\n</target>\n").is_err());
        assert!(parse("<target a>\nbacking-store\n</target>\n").unwrap_err().message.contains("needs a value"));
    }

    /// Every prefix of a real file, and every line mangled, parses or fails cleanly: no panic on
    /// any input.
    #[test]
    fn truncated_and_mangled_files_never_panic() {
        let text = "default-driver iscsi\n<target iqn.a:b>\n<backing-store /x>\nlun 1\n</backing-store>\n\
                    incominguser u p\n</target>\ninclude /nonexistent/*.conf\n";
        for end in 0..=text.len() {
            let _ = parse(&text[..end]);
        }
        for junk in ["<", ">", "</>", "<target>", "< target x>", "</target", "\u{0}", "<backing-store x>", "#<target"] {
            for (i, _) in text.lines().enumerate() {
                let mut lines: Vec<&str> = text.lines().collect();
                lines[i] = junk;
                let _ = parse(&lines.join("\n"));
            }
        }
    }

    #[test]
    fn includes_expand_wildcards_without_a_shell() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("conf.d")).unwrap();
        std::fs::write(dir.path().join("conf.d/b.conf"), "<target b>\n</target>\n").unwrap();
        std::fs::write(dir.path().join("conf.d/a.conf"), "<target a>\n</target>\n").unwrap();
        // A name a shell would run: it must simply not match anything.
        std::fs::write(dir.path().join("main.conf"), "include conf.d/*.conf\ninclude conf.d/$(touch pwned)*\n")
            .unwrap();
        let conf = load(&dir.path().join("main.conf")).unwrap();
        let names: Vec<&str> = conf.targets.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert!(!dir.path().join("pwned").exists());
        std::fs::write(dir.path().join("loop.conf"), "include loop.conf\n").unwrap();
        assert!(load(&dir.path().join("loop.conf")).unwrap_err().message.contains("too deep"));
        std::fs::write(dir.path().join("bad.conf"), "include missing.conf\n").unwrap();
        let e = load(&dir.path().join("bad.conf")).unwrap_err();
        assert!(e.to_string().contains("bad.conf:1: cannot read"), "{e}");
    }
}
