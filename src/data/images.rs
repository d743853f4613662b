//! Labelled image sets from IDX files (MNIST and its relatives).
//!
//! An [`ImageSet`] keeps the pixels as the file's bytes and converts them
//! to a float tensor of the requested dtype on demand — the whole set with
//! [`ImageSet::images`], or batch by batch with [`ImageSet::batches`] — as
//! `(p / divisor − mean) / std` ([`Normalize`]). Values are computed in f64
//! and rounded once to f32; f16 and bf16 are those f32 values cast by the
//! kernels (so `images(F16)` equals `images(F32).to_dtype(F16)` bit for bit).

use std::path::{Path, PathBuf};

use mixprec_tensor::random::Generator;
use mixprec_tensor::{DType, Element, Tensor, TensorError};

use super::batch::{BatchConfig, IndexBatches};
use super::idx::{IdxArray, read_idx};
use super::{DataError, find_file};

/// The four standard MNIST file names, without `.gz`: train images, train
/// labels, test images, test labels.
pub const MNIST_FILES: [&str; 4] =
    ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"];

/// How pixel bytes become floats: `(p / divisor − mean) / std`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Normalize {
    /// What the byte is divided by first (255 for MNIST, 16 for scikit-learn's digits).
    pub divisor: f64,
    /// Subtracted after the division.
    pub mean: f64,
    /// Divides last.
    pub std: f64,
}

impl Normalize {
    /// Pixels scaled to `[0, 1]`: `p / 255`.
    pub const UNIT: Normalize = Normalize { divisor: 255.0, mean: 0.0, std: 1.0 };
    /// MNIST's usual normalisation: `(p / 255 − 0.1307) / 0.3081`.
    pub const MNIST: Normalize = Normalize { divisor: 255.0, mean: 0.1307, std: 0.3081 };

    /// The value of pixel byte `p`, in f64.
    pub fn value(&self, p: u8) -> f64 {
        (f64::from(p) / self.divisor - self.mean) / self.std
    }

    fn validate(&self) -> Result<(), DataError> {
        let ok = |x: f64| x.is_finite() && x != 0.0;
        if ok(self.divisor) && ok(self.std) && self.mean.is_finite() {
            Ok(())
        } else {
            Err(DataError::InvalidConfig {
                what: "normalize",
                reason: format!("divisor and std must be finite and nonzero, mean finite: {self:?}"),
            })
        }
    }
}

/// A set of equally sized u8 images with one u8 label each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageSet {
    pixels: Vec<u8>,
    labels: Vec<u8>,
    sample_dims: Vec<usize>,
}

/// One batch: inputs `[batch, sample dims…]` and their class indices.
#[derive(Clone, Debug)]
pub struct Batch {
    /// The images, shape `[batch, sample dims…]`, in the requested dtype.
    pub inputs: Tensor,
    /// The class index of each image (what `cross_entropy` takes).
    pub targets: Vec<usize>,
}

/// MNIST's train and test sets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mnist {
    /// 60,000 training images.
    pub train: ImageSet,
    /// 10,000 test images.
    pub test: ImageSet,
}

/// Loads MNIST from a directory holding the four [`MNIST_FILES`], each
/// either raw or as `<name>.gz` (the raw name is tried first).
pub fn load_mnist(dir: impl AsRef<Path>) -> Result<Mnist, DataError> {
    let [train_images, train_labels, test_images, test_labels] = mnist_paths(dir)?;
    let train = ImageSet::load(train_images, train_labels)?;
    let test = ImageSet::load(test_images, test_labels)?;
    Ok(Mnist { train, test })
}

impl ImageSet {
    /// Reads an image file (IDX, at least 2 dimensions: count, then the
    /// sample's) and a label file (IDX, 1 dimension) with the same count.
    pub fn load(images: impl AsRef<Path>, labels: impl AsRef<Path>) -> Result<ImageSet, DataError> {
        let (images, labels) = (images.as_ref(), labels.as_ref());
        Self::from_idx(read_idx(images)?, images, read_idx(labels)?, labels)
    }

    /// Builds a set from decoded IDX arrays; the paths name them in errors.
    pub fn from_idx(
        images: IdxArray,
        images_path: &Path,
        labels: IdxArray,
        labels_path: &Path,
    ) -> Result<ImageSet, DataError> {
        let dims_u64 = |a: &IdxArray| a.dims().iter().map(|&d| d as u64).collect::<Vec<_>>();
        if images.dims().len() < 2 {
            return Err(DataError::Rank {
                path: images_path.to_owned(),
                what: "images",
                expected: "at least 2",
                dims: dims_u64(&images),
            });
        }
        if labels.dims().len() != 1 {
            return Err(DataError::Rank {
                path: labels_path.to_owned(),
                what: "labels",
                expected: "exactly 1",
                dims: dims_u64(&labels),
            });
        }
        let (n_images, n_labels) = (images.dims()[0], labels.dims()[0]);
        if n_images != n_labels {
            return Err(DataError::CountMismatch {
                images: images_path.to_owned(),
                labels: labels_path.to_owned(),
                n_images: n_images as u64,
                n_labels: n_labels as u64,
            });
        }
        let (dims, pixels) = images.into_parts();
        let (_, labels) = labels.into_parts();
        Ok(ImageSet { pixels, labels, sample_dims: dims[1..].to_vec() })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The shape of one image (`[28, 28]` for MNIST).
    pub fn sample_dims(&self) -> &[usize] {
        &self.sample_dims
    }

    /// Pixels per image (saturating at `usize::MAX` for an empty set whose
    /// header's dimensions multiply past it).
    pub fn sample_len(&self) -> usize {
        if self.sample_dims.contains(&0) {
            return 0;
        }
        self.sample_dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)).unwrap_or(usize::MAX)
    }

    /// All pixel bytes, image after image.
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }

    /// All labels.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// One more than the largest label (0 for an empty set).
    pub fn num_classes(&self) -> usize {
        self.labels.iter().max().map_or(0, |&m| usize::from(m) + 1)
    }

    /// How many images carry each label `0..num_classes()`.
    pub fn label_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.num_classes()];
        for &l in &self.labels {
            counts[usize::from(l)] += 1;
        }
        counts
    }

    /// The images at `indices`, in that order (repeats allowed).
    pub fn subset(&self, indices: &[usize]) -> Result<ImageSet, DataError> {
        self.check_indices(indices)?;
        let per = self.sample_len();
        let mut pixels = Vec::with_capacity(indices.len().saturating_mul(per).min(self.pixels.len()));
        for &i in indices {
            pixels.extend_from_slice(&self.pixels[i * per..(i + 1) * per]);
        }
        let labels = indices.iter().map(|&i| self.labels[i]).collect();
        Ok(ImageSet { pixels, labels, sample_dims: self.sample_dims.clone() })
    }

    /// Splits off `n_valid` images chosen at random (a permutation drawn
    /// from `rng`) as a validation set: returns `(train, validation)`, each
    /// in the original order.
    pub fn split_validation(&self, n_valid: usize, rng: &mut Generator) -> Result<(ImageSet, ImageSet), DataError> {
        let (train, valid) = super::batch::split_indices(self.len(), n_valid, rng)?;
        Ok((self.subset(&train)?, self.subset(&valid)?))
    }

    /// Every image as one tensor `[len, sample dims…]` of `dtype`.
    pub fn images(&self, dtype: DType, normalize: Normalize) -> Result<Tensor, DataError> {
        let all: Vec<usize> = (0..self.len()).collect();
        self.gather(&all, dtype, normalize)
    }

    /// The images at `indices` as one tensor `[indices.len(), sample dims…]`
    /// of `dtype`, and their labels.
    pub fn batch(&self, indices: &[usize], dtype: DType, normalize: Normalize) -> Result<Batch, DataError> {
        let inputs = self.gather(indices, dtype, normalize)?;
        let targets = indices.iter().map(|&i| usize::from(self.labels[i])).collect();
        Ok(Batch { inputs, targets })
    }

    /// One epoch of batches in the order [`IndexBatches`] gives (shuffled
    /// with `rng` if the config says so; `rng` is advanced here, not while
    /// iterating).
    pub fn batches(
        &self,
        config: &BatchConfig,
        rng: &mut Generator,
        dtype: DType,
        normalize: Normalize,
    ) -> Result<ImageBatches<'_>, DataError> {
        normalize.validate()?;
        self.check_tensor_shape("batches")?;
        let order = IndexBatches::new(self.len(), config, rng)?;
        Ok(ImageBatches { set: self, order, table: PixelTable::new(dtype, normalize) })
    }

    /// Whether `[len, sample dims…]` is a shape a tensor can have; then so is
    /// every batch's (`[b ≤ len, sample dims…]`). Dimensions like `[2, 2^32 − 1,
    /// 2^32 − 1, 0]` hold no bytes but overflow when multiplied in order.
    fn check_tensor_shape(&self, op: &'static str) -> Result<(), DataError> {
        let mut shape = vec![self.len()];
        shape.extend_from_slice(&self.sample_dims);
        let fits = mixprec_tensor::layout::checked_numel(&shape)
            .and_then(|n| n.checked_mul(8))
            .is_some_and(|bytes| bytes <= isize::MAX as usize);
        if fits { Ok(()) } else { Err(TensorError::ShapeOverflow { op, shape }.into()) }
    }

    fn check_indices(&self, indices: &[usize]) -> Result<(), DataError> {
        match indices.iter().find(|&&i| i >= self.len()) {
            Some(&i) => Err(DataError::InvalidConfig {
                what: "indices",
                reason: format!("index {i} is out of range for a set of {} images", self.len()),
            }),
            None => Ok(()),
        }
    }

    fn gather(&self, indices: &[usize], dtype: DType, normalize: Normalize) -> Result<Tensor, DataError> {
        normalize.validate()?;
        self.check_indices(indices)?;
        PixelTable::new(dtype, normalize).gather(self, indices)
    }
}

/// An epoch's batches of an [`ImageSet`] (see [`ImageSet::batches`]).
#[derive(Debug)]
pub struct ImageBatches<'a> {
    set: &'a ImageSet,
    order: IndexBatches,
    table: PixelTable,
}

impl Iterator for ImageBatches<'_> {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        let indices = self.order.next()?;
        // `batches` checked the whole set's shape, so every batch's is valid.
        let inputs = self.table.gather(self.set, &indices).expect("a batch's shape is valid");
        let targets = indices.iter().map(|&i| usize::from(self.set.labels[i])).collect();
        Some(Batch { inputs, targets })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.order.size_hint()
    }
}

impl ExactSizeIterator for ImageBatches<'_> {}

/// The 256 possible pixel values, converted once.
#[derive(Clone, Debug)]
enum PixelTable {
    F64(Box<[f64; 256]>),
    F32(Box<[f32; 256]>),
    F16(Box<[half::f16; 256]>),
    BF16(Box<[half::bf16; 256]>),
}

impl PixelTable {
    fn new(dtype: DType, normalize: Normalize) -> PixelTable {
        let f64s: [f64; 256] = std::array::from_fn(|p| normalize.value(p as u8));
        let f32s: [f32; 256] = f64s.map(|x| x as f32);
        match dtype {
            DType::F64 => PixelTable::F64(Box::new(f64s)),
            DType::F32 => PixelTable::F32(Box::new(f32s)),
            DType::F16 => {
                let mut t = Box::new([half::f16::ZERO; 256]);
                mixprec_tensor::kernels::convert::f32_to_f16(&f32s, &mut t[..]);
                PixelTable::F16(t)
            }
            DType::BF16 => {
                let mut t = Box::new([half::bf16::ZERO; 256]);
                mixprec_tensor::kernels::convert::f32_to_bf16(&f32s, &mut t[..]);
                PixelTable::BF16(t)
            }
        }
    }

    /// `[indices.len(), sample dims…]`; the indices were checked.
    fn gather(&self, set: &ImageSet, indices: &[usize]) -> Result<Tensor, DataError> {
        match self {
            PixelTable::F64(t) => gather_with(t, set, indices),
            PixelTable::F32(t) => gather_with(t, set, indices),
            PixelTable::F16(t) => gather_with(t, set, indices),
            PixelTable::BF16(t) => gather_with(t, set, indices),
        }
    }
}

fn gather_with<T: Element>(table: &[T; 256], set: &ImageSet, indices: &[usize]) -> Result<Tensor, DataError> {
    let per = set.sample_len();
    let mut shape = Vec::with_capacity(1 + set.sample_dims.len());
    shape.push(indices.len());
    shape.extend_from_slice(&set.sample_dims);
    let mut out = Tensor::zeros(&shape, T::DTYPE)?;
    let dst = out.data_mut::<T>()?;
    for (row, &i) in dst.chunks_exact_mut(per.max(1)).zip(indices) {
        for (o, &p) in row.iter_mut().zip(&set.pixels[i * per..(i + 1) * per]) {
            *o = table[usize::from(p)];
        }
    }
    Ok(out)
}

impl Mnist {
    /// Loads MNIST from the copy shipped in `data/mnist`
    /// (see [`shipped_dir`](super::shipped_dir)).
    pub fn shipped() -> Result<Mnist, DataError> {
        load_mnist(super::shipped_dir().join("mnist"))
    }
}

/// The paths [`load_mnist`] would read in `dir`, without reading them.
pub fn mnist_paths(dir: impl AsRef<Path>) -> Result<[PathBuf; 4], DataError> {
    let dir = dir.as_ref();
    let file = |name: &str| find_file(dir, &[name.to_owned(), format!("{name}.gz")]);
    Ok([file(MNIST_FILES[0])?, file(MNIST_FILES[1])?, file(MNIST_FILES[2])?, file(MNIST_FILES[3])?])
}
