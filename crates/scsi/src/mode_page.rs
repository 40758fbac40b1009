//! An administrator's mode page (tgt's `mode_page=PAGE:SUBPAGE:LEN:B0:B1:...` LUN parameter): the
//! parameter bytes MODE SENSE reports for that page, replacing the built-in values where the page
//! is one the unit already has (the bits MODE SELECT may change keep following MODE SELECT).

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModePageSpec {
    /// PAGE CODE, 0x00..=0x3e (page 0, vendor specific, is what tgt's changer examples set).
    pub page: u8,
    /// SUBPAGE CODE; 0 for a page_0 format page.
    pub subpage: u8,
    /// The parameter bytes after the page header (PAGE LENGTH of them).
    pub data: Vec<u8>,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ModePageError {
    #[error("mode_page needs PAGE:SUBPAGE:LENGTH:BYTE... ('{0}')")]
    Format(String),
    #[error("mode_page field '{0}' is not a number from 0 to 255")]
    Number(String),
    #[error("mode page code {0:#x} is outside 0x00..=0x3e")]
    PageCode(u8),
    #[error("mode page length {declared} does not match the {given} bytes given")]
    Length { declared: usize, given: usize },
}

fn number(text: &str) -> Result<u8, ModePageError> {
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u8::from_str_radix(hex, 16),
        None => text.parse::<u8>(),
    };
    parsed.map_err(|_| ModePageError::Number(text.to_string()))
}

impl ModePageSpec {
    /// Parse tgt's colon-separated form; numbers are decimal or 0x-prefixed hex.
    pub fn parse(text: &str) -> Result<Self, ModePageError> {
        let fields: Vec<&str> = text.split(':').collect();
        if fields.len() < 3 {
            return Err(ModePageError::Format(text.to_string()));
        }
        let page = number(fields[0])?;
        if page > 0x3e {
            return Err(ModePageError::PageCode(page));
        }
        let subpage = number(fields[1])?;
        let declared = usize::from(number(fields[2])?);
        let data = fields[3..].iter().map(|f| number(f)).collect::<Result<Vec<u8>, _>>()?;
        // A subpage-format page has a two-byte length; keep to what fits one byte either way.
        if data.len() != declared {
            return Err(ModePageError::Length { declared, given: data.len() });
        }
        Ok(ModePageSpec { page, subpage, data })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tgt_form() {
        let p = ModePageSpec::parse("8:0:18:0x10:0:0xff:0xff:0:0:0xff:0xff:0xff:0xff:0x80:0x14:0:0:0:0:0:0").unwrap();
        assert_eq!((p.page, p.subpage, p.data.len()), (8, 0, 18));
        assert_eq!(p.data[0], 0x10);
    }

    #[test]
    fn rejects_bad_input() {
        assert!(matches!(ModePageSpec::parse("8:0"), Err(ModePageError::Format(_))));
        assert!(matches!(ModePageSpec::parse("8:0:2:1"), Err(ModePageError::Length { .. })));
        assert!(matches!(ModePageSpec::parse("0x3f:0:0"), Err(ModePageError::PageCode(0x3f))));
        assert!(matches!(ModePageSpec::parse("8:0:1:256"), Err(ModePageError::Number(_))));
        assert!(matches!(ModePageSpec::parse("8:0:1:zz"), Err(ModePageError::Number(_))));
        // tgt's VTL examples' dummy page 0.
        assert_eq!(ModePageSpec::parse("0:0:0"), Ok(ModePageSpec { page: 0, subpage: 0, data: vec![] }));
    }
}
