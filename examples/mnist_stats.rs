//! Reads MNIST with `mixprec::data` and prints its statistics and the kernel
//! path this CPU runs.
//!
//! `cargo run --release --example mnist_stats [-- --data DIR]`
//!
//! DIR holds the four standard IDX files, raw or `.gz` (default: the copy
//! shipped in `data/mnist`).

use std::path::PathBuf;
use std::time::Instant;

use mixprec::data::{ImageSet, Normalize, load_mnist, shipped_dir};
use mixprec::tensor::DType;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut dir = shipped_dir().join("mnist");
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--data" => dir = PathBuf::from(args.next().ok_or("--data needs a directory")?),
            "-h" | "--help" => {
                println!("usage: mnist_stats [--data DIR]");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?} (try --help)").into()),
        }
    }
    println!("mixprec {}: active ISA {}", env!("CARGO_PKG_VERSION"), mixprec::kernels::active_isa());
    let start = Instant::now();
    let mnist = load_mnist(&dir)?;
    println!("read {} in {:.0} ms", dir.display(), start.elapsed().as_secs_f64() * 1e3);
    for (name, set) in [("train", &mnist.train), ("t10k", &mnist.test)] {
        print_stats(name, set)?;
    }
    Ok(())
}

fn print_stats(name: &str, set: &ImageSet) -> Result<(), Box<dyn std::error::Error>> {
    let start = Instant::now();
    let images = set.images(DType::F32, Normalize::UNIT)?;
    let convert_ms = start.elapsed().as_secs_f64() * 1e3;
    let values = images.as_slice::<f32>().ok_or("a fresh f32 tensor is contiguous")?;
    let n = values.len() as f64;
    let mean = values.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
    let var = values.iter().map(|&x| (f64::from(x) - mean).powi(2)).sum::<f64>() / n;
    let dims = set.sample_dims().iter().map(usize::to_string).collect::<Vec<_>>().join("x");
    println!(
        "{name:5}: {} images of {dims}, pixel mean {mean:.4} std {:.4}, labels per class {:?} (f32 tensor {:?} in {convert_ms:.0} ms)",
        set.len(),
        var.sqrt(),
        set.label_counts(),
        images.shape(),
    );
    Ok(())
}
