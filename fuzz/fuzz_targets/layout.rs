//! Layout construction (`Tensor::as_strided`) and every view (reshape,
//! transpose, permute, narrow, broadcast, squeeze, unsqueeze, index_axis,
//! flatten, get) from arbitrary shapes, strides, offsets and axes, including
//! sizes near `usize::MAX`: only `Ok` or `Err`, never a panic or a read
//! outside the storage. A model tracks which storage element every logical
//! element is; an `Ok` view must read exactly those (through a copy, an
//! elementwise op and a reduction), and an `Err` must be one the model
//! expects (or a `NotContiguous` reshape / `ShapeOverflow`).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use mixprec_tensor::{DType, Tensor, TensorError};

/// Views up to this many elements are materialised and compared.
const CAP: usize = 4096;

const HUGE: [usize; 8] = [usize::MAX, usize::MAX / 2 + 1, 1 << 32, 1 << 61, 255, 256, 1 << 20, 3 << 40];

/// Small values most of the time, values near the overflow edges sometimes.
fn num(b: u8) -> usize {
    if b < 224 { usize::from(b % 6) } else { HUGE[usize::from(b - 224) % 8] }
}

fn nums(v: &[u8]) -> Vec<usize> {
    v.iter().take(6).map(|&b| num(b)).collect()
}

fn axis(b: i8) -> isize {
    isize::from(b % 8)
}

#[derive(Arbitrary, Debug)]
enum ViewOp {
    AsStrided(Vec<u8>, Vec<u8>, u8),
    Reshape(Vec<u8>),
    Transpose(i8, i8),
    Permute(Vec<u8>),
    Narrow(i8, u8, u8),
    BroadcastTo(Vec<u8>),
    Squeeze(i8),
    Unsqueeze(i8),
    IndexAxis(i8, u8),
    Flatten(i8, i8),
    Get(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct Case {
    len: u8,
    dtype: u8,
    shape: Vec<u8>,
    strides: Vec<u8>,
    offset: u8,
    ops: Vec<ViewOp>,
}

/// What the view should hold: its shape and, when small enough to track,
/// the storage index of every element in row-major order.
#[derive(Clone, Debug)]
struct Model {
    shape: Vec<usize>,
    elems: Option<Vec<usize>>,
}

fn numel(shape: &[usize]) -> Option<usize> {
    if shape.contains(&0) {
        return Some(0);
    }
    shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d))
}

fn norm(a: isize, rank: usize) -> Option<usize> {
    let r = rank as isize;
    let a = if a < 0 { a + r } else { a };
    (0..r).contains(&a).then_some(a as usize)
}

impl Model {
    /// A model of `shape` whose element at multi-index `i` is the old
    /// element at `old(i)` (row-major in the old shape).
    fn remap(&self, shape: Vec<usize>, old: impl Fn(&[usize]) -> Vec<usize>) -> Model {
        let n = numel(&shape);
        let elems = match (&self.elems, n) {
            (Some(e), Some(n)) if n <= CAP => {
                let mut out = Vec::with_capacity(n);
                let mut idx = vec![0usize; shape.len()];
                for _ in 0..n {
                    let o = old(&idx);
                    let flat = o.iter().zip(&self.shape).fold(0usize, |acc, (&i, &d)| acc * d + i);
                    out.push(e[flat]);
                    for ax in (0..shape.len()).rev() {
                        idx[ax] += 1;
                        if idx[ax] < shape[ax] {
                            break;
                        }
                        idx[ax] = 0;
                    }
                }
                Some(out)
            }
            _ => None,
        };
        Model { shape, elems }
    }

    fn strided(len: usize, shape: &[usize], strides: &[usize], offset: usize) -> Option<Model> {
        if shape.len() != strides.len() {
            return None;
        }
        let n = numel(shape)?;
        if n.checked_mul(8).is_none_or(|b| b > isize::MAX as usize) {
            return None;
        }
        if n == 0 {
            return (offset <= len).then(|| Model { shape: shape.to_vec(), elems: Some(Vec::new()) });
        }
        let last =
            shape.iter().zip(strides).try_fold(offset, |acc, (&d, &s)| acc.checked_add((d - 1).checked_mul(s)?))?;
        if last >= len {
            return None;
        }
        let elems = (n <= CAP).then(|| {
            let mut out = Vec::with_capacity(n);
            let mut idx = vec![0usize; shape.len()];
            for _ in 0..n {
                out.push(offset + idx.iter().zip(strides).map(|(&i, &s)| i * s).sum::<usize>());
                for ax in (0..shape.len()).rev() {
                    idx[ax] += 1;
                    if idx[ax] < shape[ax] {
                        break;
                    }
                    idx[ax] = 0;
                }
            }
            out
        });
        Some(Model { shape: shape.to_vec(), elems })
    }

    fn apply(&self, op: &ViewOp, len: usize) -> Option<Model> {
        let rank = self.shape.len();
        match op {
            ViewOp::AsStrided(sh, st, off) => Model::strided(len, &nums(sh), &nums(st), num(*off)),
            ViewOp::Reshape(sh) => {
                let sh = nums(sh);
                (numel(&sh)? == numel(&self.shape)?).then(|| Model { shape: sh, elems: self.elems.clone() })
            }
            ViewOp::Transpose(a, b) => {
                let (a, b) = (norm(axis(*a), rank)?, norm(axis(*b), rank)?);
                let mut shape = self.shape.clone();
                shape.swap(a, b);
                Some(self.remap(shape, |i| {
                    let mut o = i.to_vec();
                    o.swap(a, b);
                    o
                }))
            }
            ViewOp::Permute(p) => {
                let p: Vec<usize> = p.iter().take(6).map(|&x| usize::from(x % 8)).collect();
                let mut seen = vec![false; rank];
                if p.len() != rank || !p.iter().all(|&x| x < rank && !std::mem::replace(&mut seen[x], true)) {
                    return None;
                }
                let shape = p.iter().map(|&x| self.shape[x]).collect();
                Some(self.remap(shape, |i| {
                    let mut o = vec![0; rank];
                    for (k, &x) in p.iter().enumerate() {
                        o[x] = i[k];
                    }
                    o
                }))
            }
            ViewOp::Narrow(a, start, n) => {
                let a = norm(axis(*a), rank)?;
                let (start, n) = (num(*start), num(*n));
                if start.checked_add(n)? > self.shape[a] {
                    return None;
                }
                let mut shape = self.shape.clone();
                shape[a] = n;
                Some(self.remap(shape, |i| {
                    let mut o = i.to_vec();
                    o[a] += start;
                    o
                }))
            }
            ViewOp::BroadcastTo(sh) => {
                let sh = nums(sh);
                if sh.len() < rank {
                    return None;
                }
                let lead = sh.len() - rank;
                for (k, &d) in self.shape.iter().enumerate() {
                    if d != sh[lead + k] && d != 1 {
                        return None;
                    }
                }
                let own = self.shape.clone();
                Some(
                    self.remap(sh, |i| i[lead..].iter().zip(&own).map(|(&x, &d)| if d == 1 { 0 } else { x }).collect()),
                )
            }
            ViewOp::Squeeze(a) => {
                let a = norm(axis(*a), rank)?;
                if self.shape[a] != 1 {
                    return None;
                }
                let mut shape = self.shape.clone();
                shape.remove(a);
                Some(Model { shape, elems: self.elems.clone() })
            }
            ViewOp::Unsqueeze(a) => {
                let a = norm(axis(*a), rank + 1)?;
                let mut shape = self.shape.clone();
                shape.insert(a, 1);
                Some(Model { shape, elems: self.elems.clone() })
            }
            ViewOp::IndexAxis(a, i) => {
                let a = norm(axis(*a), rank)?;
                let i = num(*i);
                if i >= self.shape[a] {
                    return None;
                }
                let mut shape = self.shape.clone();
                shape.remove(a);
                Some(self.remap(shape, |idx| {
                    let mut o = idx.to_vec();
                    o.insert(a, i);
                    o
                }))
            }
            ViewOp::Flatten(s, e) => {
                if rank == 0 {
                    return Some(Model { shape: vec![1], elems: self.elems.clone() });
                }
                let (s, e) = (norm(axis(*s), rank)?, norm(axis(*e), rank)?);
                if s > e {
                    return None;
                }
                let mut shape = self.shape[..s].to_vec();
                shape.push(numel(&self.shape[s..=e])?);
                shape.extend_from_slice(&self.shape[e + 1..]);
                Some(Model { shape, elems: self.elems.clone() })
            }
            ViewOp::Get(_) => Some(self.clone()),
        }
    }
}

fn run(t: &Tensor, op: &ViewOp) -> Result<Tensor, TensorError> {
    match op {
        ViewOp::AsStrided(sh, st, off) => t.as_strided(&nums(sh), &nums(st), num(*off)),
        ViewOp::Reshape(sh) => t.reshape(&nums(sh)),
        ViewOp::Transpose(a, b) => t.transpose(axis(*a), axis(*b)),
        ViewOp::Permute(p) => t.permute(&p.iter().take(6).map(|&x| usize::from(x % 8)).collect::<Vec<_>>()),
        ViewOp::Narrow(a, s, n) => t.narrow(axis(*a), num(*s), num(*n)),
        ViewOp::BroadcastTo(sh) => t.broadcast_to(&nums(sh)),
        ViewOp::Squeeze(a) => t.squeeze(axis(*a)),
        ViewOp::Unsqueeze(a) => t.unsqueeze(axis(*a)),
        ViewOp::IndexAxis(a, i) => t.index_axis(axis(*a), num(*i)),
        ViewOp::Flatten(s, e) => t.flatten(axis(*s), axis(*e)),
        ViewOp::Get(_) => Ok(t.clone()),
    }
}

/// Compares a view with its model through a copy, an elementwise op and a sum.
fn check(t: &Tensor, m: &Model, what: &ViewOp) {
    assert_eq!(t.shape(), m.shape.as_slice(), "after {what:?}");
    let Some(elems) = &m.elems else { return };
    let want: Vec<f64> = elems.iter().map(|&e| e as f64).collect();
    assert_eq!(t.to_vec_f64().unwrap(), want, "after {what:?}: {:?} strides {:?}", t.shape(), t.strides());
    let doubled = t.add(t).unwrap().to_vec_f64().unwrap();
    let want2: Vec<f64> = want.iter().map(|x| 2.0 * x).collect();
    assert_eq!(doubled, want2, "t + t after {what:?}");
    let c = t.contiguous();
    assert!(c.is_contiguous());
    assert_eq!(c.to_vec_f64().unwrap(), want);
    if let Some(ViewOp::Get(ix)) = Some(what) {
        let ix: Vec<usize> = ix.iter().take(6).map(|&b| usize::from(b % 7)).collect();
        let inside = ix.len() == m.shape.len() && ix.iter().zip(&m.shape).all(|(&i, &d)| i < d);
        match t.get(&ix) {
            Ok(v) => {
                assert!(inside, "get({ix:?}) of {:?} = {v}", m.shape);
                let flat = ix.iter().zip(&m.shape).fold(0usize, |acc, (&i, &d)| acc * d + i);
                assert_eq!(v, want[flat]);
            }
            Err(_) => assert!(!inside, "get({ix:?}) of {:?} refused", m.shape),
        }
    }
}

fuzz_target!(|case: Case| {
    let len = usize::from(case.len);
    let dtype = [DType::F64, DType::F32, DType::F16, DType::BF16][usize::from(case.dtype % 4)];
    let values: Vec<f64> = (0..len).map(|i| i as f64).collect();
    let base = Tensor::from_vec(values, &[len]).unwrap().to_dtype(dtype).unwrap();
    let first = ViewOp::AsStrided(case.shape.clone(), case.strides.clone(), case.offset);
    let mut model = Model { shape: vec![len], elems: Some((0..len).collect()) };
    let mut t = base.clone();
    for op in std::iter::once(&first).chain(case.ops.iter().take(12)) {
        let want = model.apply(op, len);
        match run(&t, op) {
            Ok(v) => {
                let Some(m) = want else { panic!("{op:?} on {:?} (strides {:?}) accepted", t.shape(), t.strides()) };
                if let Some(end) = v.layout().checked_end() {
                    assert!(v.numel() == 0 || end <= len, "{op:?}: view ends at {end}, storage holds {len}");
                }
                check(&v, &m, op);
                t = v;
                model = m;
            }
            Err(e) => {
                let tolerated = matches!(e, TensorError::NotContiguous { .. } | TensorError::ShapeOverflow { .. });
                assert!(want.is_none() || tolerated, "{op:?} on {:?} refused: {e}", t.shape());
            }
        }
    }
});
