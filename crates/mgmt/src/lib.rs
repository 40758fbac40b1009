//! The management protocol shared by tgtd and tgtadm. SKELETON.
