//! `Display` like PyTorch's: nested brackets, a common width and format
//! (integers as `1.`, fixed `1.2346` or scientific `1.2346e+05` chosen from
//! the values shown), at most 3 leading and 3 trailing entries per axis when
//! the tensor has more than 1000 elements, then the shape and dtype.

use std::fmt;

use crate::tensor::Tensor;

const THRESHOLD: usize = 1000;
const EDGE: usize = 3;
const LINE_WIDTH: usize = 80;

#[derive(Clone, Copy)]
enum Mode {
    Int,
    Fixed,
    Sci,
}

fn fmt_value(v: f64, mode: Mode) -> String {
    if v.is_nan() {
        return "nan".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf".into() } else { "-inf".into() };
    }
    match mode {
        Mode::Int => format!("{v:.0}."),
        Mode::Fixed => format!("{v:.4}"),
        Mode::Sci => {
            let s = format!("{v:.4e}");
            match s.split_once('e') {
                Some((m, e)) => {
                    let (sign, digits) = match e.strip_prefix('-') {
                        Some(d) => ('-', d),
                        None => ('+', e),
                    };
                    format!("{m}e{sign}{digits:0>2}")
                }
                None => s,
            }
        }
    }
}

fn choose_mode(vals: &[f64]) -> Mode {
    let finite: Vec<f64> = vals.iter().copied().filter(|v| v.is_finite()).collect();
    let max = finite.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let min_nz = finite.iter().filter(|v| **v != 0.0).fold(f64::INFINITY, |m, v| m.min(v.abs()));
    if finite.iter().all(|v| v.fract() == 0.0) {
        return if max > 1e8 { Mode::Sci } else { Mode::Int };
    }
    if max > 1e8 || (min_nz.is_finite() && (min_nz < 1e-4 || max / min_nz > 1000.0)) {
        return Mode::Sci;
    }
    Mode::Fixed
}

struct Printer<'a> {
    t: &'a Tensor,
    summarize: bool,
}

impl Printer<'_> {
    /// Indices shown along an axis of `size`, with `None` for the ellipsis.
    fn shown(&self, size: usize) -> Vec<Option<usize>> {
        if self.summarize && size > 2 * EDGE {
            (0..EDGE).map(Some).chain([None]).chain((size - EDGE..size).map(Some)).collect()
        } else {
            (0..size).map(Some).collect()
        }
    }

    fn collect(&self, prefix: &mut Vec<usize>, out: &mut Vec<f64>) {
        let dim = prefix.len();
        if dim == self.t.rank() {
            out.push(self.t.get(prefix).unwrap_or(f64::NAN));
            return;
        }
        for i in self.shown(self.t.shape()[dim]).into_iter().flatten() {
            prefix.push(i);
            self.collect(prefix, out);
            prefix.pop();
        }
    }

    fn write(&self, f: &mut String, prefix: &mut Vec<usize>, indent: usize, mode: Mode, width: usize) {
        let dim = prefix.len();
        let rank = self.t.rank();
        if dim == rank {
            let v = self.t.get(prefix).unwrap_or(f64::NAN);
            f.push_str(&format!("{:>width$}", fmt_value(v, mode)));
            return;
        }
        f.push('[');
        let shown = self.shown(self.t.shape()[dim]);
        if dim + 1 == rank {
            let per_line = ((LINE_WIDTH.saturating_sub(indent + 1)) / (width + 2)).max(1);
            for (k, i) in shown.iter().enumerate() {
                if k > 0 {
                    f.push(',');
                    if k % per_line == 0 {
                        f.push('\n');
                        f.push_str(&" ".repeat(indent + 1));
                    } else {
                        f.push(' ');
                    }
                }
                match i {
                    Some(i) => {
                        prefix.push(*i);
                        self.write(f, prefix, indent + 1, mode, width);
                        prefix.pop();
                    }
                    None => f.push_str(" ..."),
                }
            }
        } else {
            let sep = format!(",{}{}", "\n".repeat(rank - dim - 1), " ".repeat(indent + 1));
            for (k, i) in shown.iter().enumerate() {
                if k > 0 {
                    f.push_str(&sep);
                }
                match i {
                    Some(i) => {
                        prefix.push(*i);
                        self.write(f, prefix, indent + 1, mode, width);
                        prefix.pop();
                    }
                    None => f.push_str("..."),
                }
            }
        }
        f.push(']');
    }
}

impl fmt::Display for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = Printer { t: self, summarize: self.numel() > THRESHOLD };
        let mut vals = Vec::new();
        p.collect(&mut Vec::new(), &mut vals);
        let mode = choose_mode(&vals);
        let width = vals.iter().map(|&v| fmt_value(v, mode).len()).max().unwrap_or(0);
        let mut body = String::new();
        if self.numel() == 0 {
            body.push_str("[]");
        } else {
            p.write(&mut body, &mut Vec::new(), "tensor(".len(), mode, width);
        }
        write!(f, "tensor({body}, shape={:?}, dtype={})", self.shape(), self.dtype())
    }
}

#[cfg(test)]
mod tests {
    use crate::{DType, Tensor};

    #[test]
    fn formats_like_pytorch() {
        let t = Tensor::from_vec(vec![1.0f32, 2.5, -3.0, 4.0], &[2, 2]).unwrap();
        assert_eq!(t.to_string(), "tensor([[ 1.0000,  2.5000],\n        [-3.0000,  4.0000]], shape=[2, 2], dtype=f32)");
        let t = Tensor::arange(0.0, 3.0, 1.0, DType::F16).unwrap();
        assert_eq!(t.to_string(), "tensor([0., 1., 2.], shape=[3], dtype=f16)");
        let t = Tensor::from_vec(vec![1e-5f64, 1.0, f64::NAN], &[3]).unwrap();
        assert_eq!(t.to_string(), "tensor([1.0000e-05, 1.0000e+00,        nan], shape=[3], dtype=f64)");
        let t = Tensor::zeros(&[0, 3], DType::BF16).unwrap();
        assert_eq!(t.to_string(), "tensor([], shape=[0, 3], dtype=bf16)");
        assert_eq!(Tensor::scalar(0.5, DType::F32).to_string(), "tensor(0.5000, shape=[], dtype=f32)");
        let big = Tensor::arange(0.0, 2000.0, 1.0, DType::F32).unwrap().reshape(&[2, 1000]).unwrap();
        assert_eq!(
            big.to_string(),
            "tensor([[   0.,    1.,    2.,  ...,  997.,  998.,  999.],\n        [1000., 1001., 1002.,  ..., 1997., 1998., 1999.]], shape=[2, 1000], dtype=f32)"
        );
    }
}
