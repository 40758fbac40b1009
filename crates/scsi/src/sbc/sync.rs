//! SYNCHRONIZE CACHE(10/16) (SBC-3 5.22, 5.23): flush the whole store. The range is checked but
//! the stores have no finer flush than everything.

use super::{byte_range, store_error, Access};
use crate::cdb::{self, BlockRange, Cdb};
use crate::lun::LogicalUnit;
use crate::opcodes::{io, Handler};
use crate::sense::Sense;
use rtgt_backstore::BlockStore;

pub(crate) async fn synchronize_cache(lu: &LogicalUnit, range: BlockRange) -> Result<(), Sense> {
    byte_range(lu, range)?;
    let store = lu.medium()?;
    store.flush().await.map_err(|e| store_error(lu, &e, Access::Write))
}

/// SYNCHRONIZE CACHE(10/16)'s range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SyncCache {
    pub range: BlockRange,
}

impl Cdb for SyncCache {
    fn decode(c: &[u8]) -> Result<Self, Sense> {
        Ok(SyncCache { range: cdb::range(c) })
    }
}

pub(crate) const SYNCHRONIZE_CACHE: Handler =
    io!(SyncCache, |req, SyncCache { range }| synchronize_cache(req.lu, range));

#[cfg(test)]
mod tests {
    use crate::test_util::*;

    #[test]
    fn sync_cache() {
        let t = TestLun::disk(1 << 20);
        assert_good(&t.run(&[0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0]).0);
        assert_good(&t.run(&[0x35, 0x02, 0, 0, 0x07, 0xff, 0, 0, 1, 0]).0);
        assert_sense(&t.run(&[0x35, 0, 0, 0, 0x08, 0x00, 0, 0, 1, 0]).0, 0x05, 0x21, 0x00);
        assert_good(&t.run(&[0x91, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).0);
        assert_sense(&t.run(&[0x35, 0x80, 0, 0, 0, 0, 0, 0, 0, 0]).0, 0x05, 0x24, 0x00);
    }
}
