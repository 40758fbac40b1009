//! The image a store serves from, replaceable while it serves: a gateway that the others fenced
//! (its RADOS client blocklisted) comes back on a new client and a new image handle, opened by its
//! membership thread, while commands still in flight finish (failing) on the old one.
//!
//! Every command takes its own reference to the current image (one atomic load and count, no
//! lock) and keeps it until librbd completed; the replaced image is closed by whoever retires it
//! once nothing else holds it, never by a runtime worker (closing blocks).

use super::image::Image;
use super::options::{ImagePath, RbdOptions};
use crate::BackstoreError;
use arc_swap::ArcSwap;
use std::sync::Arc;

pub(crate) struct ImageSlot {
    current: ArcSwap<Image>,
    path: ImagePath,
    /// As parsed at open: a reconnection connects and opens exactly as the first time did.
    options: RbdOptions,
    readonly: bool,
}

impl std::fmt::Debug for ImageSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageSlot").field("path", &self.path).finish_non_exhaustive()
    }
}

impl ImageSlot {
    pub(crate) fn new(image: Image, path: ImagePath, options: RbdOptions, readonly: bool) -> ImageSlot {
        ImageSlot { current: ArcSwap::from_pointee(image), path, options, readonly }
    }

    /// The image commands use now.
    pub(crate) fn get(&self) -> Arc<Image> {
        self.current.load_full()
    }

    /// A new cluster client and a new handle on the same image, not yet in use. Blocking (up to
    /// the connection timeout).
    pub(crate) fn reopen(&self) -> Result<Arc<Image>, BackstoreError> {
        Image::open(&self.path, &self.options, self.readonly).map(Arc::new)
    }

    /// Serve from `image` from now on; the image replaced, for the caller to retire.
    pub(crate) fn replace(&self, image: Arc<Image>) -> Arc<Image> {
        self.current.swap(image)
    }

    pub(crate) fn path(&self) -> &ImagePath {
        &self.path
    }
}
