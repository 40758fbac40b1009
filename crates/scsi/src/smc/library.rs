//! The library's inventory: its elements (SMC-3 4.2: medium transport, storage, import/export and
//! data transfer), which cartridge each holds, which drive each data transfer element stands for,
//! and the directory its cartridges' files live in. Pure data: how an administrator changes it
//! (`LibraryChange`, checked here) and what the commands read of it; the drives themselves are
//! reached only through `state`, which holds this behind its lock.

use std::path::PathBuf;

/// SMC-3 6.11.1 ELEMENT TYPE CODE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ElementType {
    /// The picker (robot arm) that carries a cartridge between the other elements.
    Transport = 1,
    /// A slot.
    Storage = 2,
    /// A mail slot, where an operator puts cartridges in and takes them out.
    ImportExport = 3,
    /// A drive.
    DataTransfer = 4,
}

impl ElementType {
    pub const ALL: [ElementType; 4] =
        [ElementType::Transport, ElementType::Storage, ElementType::ImportExport, ElementType::DataTransfer];

    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.code() == code)
    }

    /// In an administrator's words.
    pub fn name(self) -> &'static str {
        match self {
            ElementType::Transport => "medium transport",
            ElementType::Storage => "storage",
            ElementType::ImportExport => "import/export",
            ElementType::DataTransfer => "data transfer",
        }
    }
}

/// The longest barcode: the PRIMARY VOLUME TAG's identifier field (SMC-3 7.3.5, 32 bytes).
pub const MAX_BARCODE: usize = 32;

/// Why a barcode cannot name a cartridge: it is also the name of the cartridge's file in the
/// media directory, so it must stay inside it, and it must fit the volume tag.
pub fn barcode_problem(barcode: &str) -> Option<&'static str> {
    if barcode.is_empty() || barcode.len() > MAX_BARCODE {
        return Some("must be 1 to 32 characters");
    }
    if !barcode.bytes().all(|b| b.is_ascii_graphic() && b != b'/') {
        return Some("must be printable ASCII without spaces or '/'");
    }
    if barcode == "." || barcode == ".." {
        return Some("must not be '.' or '..'");
    }
    None
}

/// A cartridge: its barcode (the name of its file in the media directory) and where it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cartridge {
    pub barcode: String,
    /// A volume tag reported instead of the barcode (tgt's `volume_tag=`), if any.
    pub volume_tag: Option<String>,
    /// The element it was last moved from (SOURCE STORAGE ELEMENT ADDRESS, SVALID).
    pub source: Option<u16>,
    /// Put in an import/export element by the operator rather than by the robot (IMPEXP).
    pub imported: bool,
}

impl Cartridge {
    pub fn new(barcode: impl Into<String>) -> Self {
        Cartridge { barcode: barcode.into(), volume_tag: None, source: None, imported: false }
    }

    /// What PRIMARY VOLUME TAG reports.
    pub fn tag(&self) -> &str {
        self.volume_tag.as_deref().unwrap_or(&self.barcode)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Element {
    pub address: u16,
    pub kind: ElementType,
    pub medium: Option<Cartridge>,
    /// The (tid, LUN) of the drive a data transfer element stands for.
    pub drive: Option<(u32, u64)>,
}

/// One range of elements of one type, as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElementRange {
    pub kind: ElementType,
    pub start: u16,
    pub quantity: u16,
}

/// What an administrator changes in a library (tgt's `element_type=...` parameters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LibraryChange {
    /// Where cartridge files are (`media_home=`).
    MediaHome(PathBuf),
    /// `quantity` elements of one type from address `start` on.
    AddElements(ElementRange),
    /// Put a cartridge in an element (tgt: a slot or a mail slot; here any element, so that a
    /// saved library comes back with the cartridges that were in drives or in the picker).
    Insert { kind: ElementType, address: u16, cartridge: Cartridge },
    /// Take whatever cartridge an element holds out (tgt's `clear_slot=1`).
    Remove { kind: ElementType, address: u16 },
    /// The drive at (tid, LUN) is the data transfer element at `address`.
    BindDrive { address: u16, tid: u32, lun: u64 },
    /// Whether cartridges have two sides (`element_type=1,sides=2`): MOVE MEDIUM may then INVERT.
    Sides(u8),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LibraryError {
    #[error("element addresses start at 1 and a range holds at least one element")]
    EmptyRange,
    #[error("elements {start}..{start}+{quantity} run past address 65535")]
    PastLastAddress { start: u16, quantity: u16 },
    #[error("element address {0} is already used")]
    AddressTaken(u16),
    #[error("there is no {} element at address {address}", kind.name())]
    NoElement { kind: ElementType, address: u16 },
    #[error("element {address} already holds {barcode}")]
    Full { address: u16, barcode: String },
    #[error("{barcode} is already in element {address}")]
    BarcodeInLibrary { barcode: String, address: u16 },
    #[error("barcode '{barcode}' {why}")]
    BadBarcode { barcode: String, why: &'static str },
    #[error("sides must be 1 or 2")]
    BadSides,
    #[error("an initiator prevents medium removal from the library")]
    RemovalPrevented,
}

/// The inventory. Elements are kept in address order, which READ ELEMENT STATUS reports in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Library {
    pub elements: Vec<Element>,
    pub ranges: Vec<ElementRange>,
    pub media_home: Option<PathBuf>,
    /// Cartridges have two sides (the transport geometry page's ROTATE).
    pub two_sided: bool,
}

impl Library {
    pub fn find(&self, address: u16) -> Option<&Element> {
        self.elements.binary_search_by_key(&address, |e| e.address).ok().map(|i| &self.elements[i])
    }

    pub fn find_mut(&mut self, address: u16) -> Option<&mut Element> {
        self.elements.binary_search_by_key(&address, |e| e.address).ok().map(|i| &mut self.elements[i])
    }

    fn of_kind_mut(&mut self, kind: ElementType, address: u16) -> Result<&mut Element, LibraryError> {
        self.find_mut(address).filter(|e| e.kind == kind).ok_or(LibraryError::NoElement { kind, address })
    }

    /// Where the cartridge with this barcode is, if it is in the library.
    pub fn locate(&self, barcode: &str) -> Option<u16> {
        self.elements.iter().find(|e| e.medium.as_ref().is_some_and(|m| m.barcode == barcode)).map(|e| e.address)
    }

    /// The first address and the number of elements of a type (the element address assignment
    /// page); (0, 0) when there are none.
    pub fn span(&self, kind: ElementType) -> (u16, u16) {
        let mut of_kind = self.elements.iter().filter(|e| e.kind == kind);
        let first = of_kind.next().map_or(0, |e| e.address);
        (first, self.elements.iter().filter(|e| e.kind == kind).count() as u16)
    }

    /// Apply one change, or refuse it and change nothing.
    pub fn apply(&mut self, change: LibraryChange) -> Result<(), LibraryError> {
        match change {
            LibraryChange::MediaHome(dir) => self.media_home = Some(dir),
            LibraryChange::AddElements(range) => self.add(range)?,
            LibraryChange::Insert { kind, address, cartridge } => {
                if let Some(why) = barcode_problem(&cartridge.barcode) {
                    return Err(LibraryError::BadBarcode { barcode: cartridge.barcode, why });
                }
                if let Some(at) = self.locate(&cartridge.barcode) {
                    return Err(LibraryError::BarcodeInLibrary { barcode: cartridge.barcode, address: at });
                }
                let element = self.of_kind_mut(kind, address)?;
                if let Some(held) = &element.medium {
                    return Err(LibraryError::Full { address, barcode: held.barcode.clone() });
                }
                let imported = kind == ElementType::ImportExport;
                element.medium = Some(Cartridge { imported, ..cartridge });
            }
            LibraryChange::Remove { kind, address } => self.of_kind_mut(kind, address)?.medium = None,
            LibraryChange::BindDrive { address, tid, lun } => {
                // A later binding of the same element replaces the earlier one (tgt's L700 example
                // binds one address three times).
                self.of_kind_mut(ElementType::DataTransfer, address)?.drive = Some((tid, lun));
            }
            LibraryChange::Sides(sides) => {
                self.two_sided = match sides {
                    1 => false,
                    2 => true,
                    _ => return Err(LibraryError::BadSides),
                }
            }
        }
        Ok(())
    }

    fn add(&mut self, range: ElementRange) -> Result<(), LibraryError> {
        let ElementRange { kind, start, quantity } = range;
        if start == 0 || quantity == 0 {
            return Err(LibraryError::EmptyRange);
        }
        let last = start.checked_add(quantity - 1).ok_or(LibraryError::PastLastAddress { start, quantity })?;
        if let Some(taken) = self.elements.iter().find(|e| (start..=last).contains(&e.address)) {
            return Err(LibraryError::AddressTaken(taken.address));
        }
        self.elements.extend((start..=last).map(|address| Element { address, kind, medium: None, drive: None }));
        self.elements.sort_by_key(|e| e.address);
        self.ranges.push(range);
        Ok(())
    }

    /// The changes that build this library again, in an order that applies: the media directory,
    /// the ranges, the drives, then the cartridges where they are now.
    pub fn changes(&self) -> Vec<LibraryChange> {
        let mut out = Vec::new();
        out.extend(self.media_home.clone().map(LibraryChange::MediaHome));
        out.extend(self.ranges.iter().copied().map(LibraryChange::AddElements));
        if self.two_sided {
            out.push(LibraryChange::Sides(2));
        }
        for e in &self.elements {
            if let Some((tid, lun)) = e.drive {
                out.push(LibraryChange::BindDrive { address: e.address, tid, lun });
            }
        }
        for e in &self.elements {
            if let Some(cartridge) = &e.medium {
                out.push(LibraryChange::Insert { kind: e.kind, address: e.address, cartridge: cartridge.clone() });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(kind: ElementType, start: u16, quantity: u16) -> LibraryChange {
        LibraryChange::AddElements(ElementRange { kind, start, quantity })
    }

    fn insert(kind: ElementType, address: u16, barcode: &str) -> LibraryChange {
        LibraryChange::Insert { kind, address, cartridge: Cartridge::new(barcode) }
    }

    fn l700() -> Library {
        let mut l = Library::default();
        for change in [
            range(ElementType::Transport, 1, 1),
            range(ElementType::Storage, 1000, 216),
            range(ElementType::ImportExport, 10, 20),
            range(ElementType::DataTransfer, 500, 3),
        ] {
            l.apply(change).unwrap();
        }
        l
    }

    #[test]
    fn ranges_lay_out_elements_in_address_order() {
        let l = l700();
        assert_eq!(l.elements.len(), 1 + 216 + 20 + 3);
        assert!(l.elements.windows(2).all(|w| w[0].address < w[1].address));
        assert_eq!(l.span(ElementType::Storage), (1000, 216));
        assert_eq!(l.span(ElementType::ImportExport), (10, 20));
        assert_eq!(l.span(ElementType::DataTransfer), (500, 3));
    }

    #[test]
    fn bad_ranges_are_refused_and_change_nothing() {
        let mut l = l700();
        let before = l.clone();
        assert_eq!(l.apply(range(ElementType::Storage, 1215, 2)), Err(LibraryError::AddressTaken(1215)));
        assert_eq!(l.apply(range(ElementType::Storage, 5, 10)), Err(LibraryError::AddressTaken(10)));
        assert_eq!(l.apply(range(ElementType::Storage, 0, 1)), Err(LibraryError::EmptyRange));
        assert_eq!(l.apply(range(ElementType::Storage, 2000, 0)), Err(LibraryError::EmptyRange));
        assert!(matches!(l.apply(range(ElementType::Storage, 65535, 2)), Err(LibraryError::PastLastAddress { .. })));
        assert_eq!(l, before);
        l.apply(range(ElementType::Storage, 65535, 1)).unwrap();
    }

    #[test]
    fn cartridges_go_where_there_is_room_once() {
        let mut l = l700();
        l.apply(insert(ElementType::Storage, 1000, "A00001L3")).unwrap();
        assert_eq!(
            l.apply(insert(ElementType::Storage, 1000, "A00002L3")),
            Err(LibraryError::Full { address: 1000, barcode: "A00001L3".into() })
        );
        assert_eq!(
            l.apply(insert(ElementType::Storage, 1001, "A00001L3")),
            Err(LibraryError::BarcodeInLibrary { barcode: "A00001L3".into(), address: 1000 })
        );
        assert_eq!(
            l.apply(insert(ElementType::Storage, 10, "B")),
            Err(LibraryError::NoElement { kind: ElementType::Storage, address: 10 })
        );
        for bad in ["../etc", "a/b", "..", "", "has space", &"X".repeat(33)] {
            assert!(matches!(l.apply(insert(ElementType::Storage, 1001, bad)), Err(LibraryError::BadBarcode { .. })));
        }
        // The operator's cartridge in a mail slot is imported (IMPEXP).
        l.apply(insert(ElementType::ImportExport, 10, "C")).unwrap();
        assert!(l.find(10).unwrap().medium.as_ref().unwrap().imported);
        l.apply(LibraryChange::Remove { kind: ElementType::Storage, address: 1000 }).unwrap();
        assert_eq!(l.find(1000).unwrap().medium, None);
        l.apply(insert(ElementType::Storage, 1001, "A00001L3")).unwrap();
    }

    #[test]
    fn drives_bind_to_data_transfer_elements_only_and_rebind() {
        let mut l = l700();
        for lun in 1..=3 {
            l.apply(LibraryChange::BindDrive { address: 500, tid: 1, lun }).unwrap();
        }
        assert_eq!(l.find(500).unwrap().drive, Some((1, 3)));
        assert_eq!(
            l.apply(LibraryChange::BindDrive { address: 1000, tid: 1, lun: 1 }),
            Err(LibraryError::NoElement { kind: ElementType::DataTransfer, address: 1000 })
        );
        assert_eq!(l.apply(LibraryChange::Sides(3)), Err(LibraryError::BadSides));
    }

    #[test]
    fn changes_rebuild_the_same_library() {
        let mut l = l700();
        l.apply(LibraryChange::MediaHome("/srv/tapes".into())).unwrap();
        l.apply(LibraryChange::BindDrive { address: 501, tid: 2, lun: 7 }).unwrap();
        l.apply(LibraryChange::Sides(2)).unwrap();
        l.apply(insert(ElementType::Storage, 1003, "A")).unwrap();
        let mut in_drive = Cartridge::new("B");
        in_drive.source = Some(1001);
        l.apply(LibraryChange::Insert { kind: ElementType::DataTransfer, address: 501, cartridge: in_drive }).unwrap();
        let mut again = Library::default();
        for change in l.changes() {
            again.apply(change).unwrap();
        }
        assert_eq!(again, l);
    }
}
