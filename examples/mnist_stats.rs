//! Reads the shipped MNIST (gzip-compressed IDX files) and prints its
//! statistics and the kernel path this CPU runs.
//!
//! `cargo run --release --example mnist_stats`

use std::io::Read;

use flate2::read::GzDecoder;

fn read_gz(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    GzDecoder::new(std::fs::File::open(path)?).read_to_end(&mut bytes)?;
    Ok(bytes)
}

fn be_u32(b: &[u8], at: usize) -> usize {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as usize
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = mixprec::data::shipped_dir().join("mnist");
    println!("mixprec {}: active ISA {}", env!("CARGO_PKG_VERSION"), mixprec::kernels::active_isa());
    for split in ["train", "t10k"] {
        let images = read_gz(&dir.join(format!("{split}-images-idx3-ubyte.gz")))?;
        let labels = read_gz(&dir.join(format!("{split}-labels-idx1-ubyte.gz")))?;
        if be_u32(&images, 0) != 0x803 || be_u32(&labels, 0) != 0x801 {
            return Err(format!("{split}: not IDX image/label files").into());
        }
        let (n, rows, cols) = (be_u32(&images, 4), be_u32(&images, 8), be_u32(&images, 12));
        let pixels = &images[16..];
        let labels = &labels[8..];
        if pixels.len() != n * rows * cols || labels.len() != n {
            return Err(format!("{split}: sizes do not match the headers").into());
        }
        let mut counts = [0usize; 10];
        for &l in labels {
            counts[l as usize % 10] += 1;
        }
        let mean = pixels.iter().map(|&p| p as f64 / 255.0).sum::<f64>() / pixels.len() as f64;
        let var = pixels.iter().map(|&p| (p as f64 / 255.0 - mean).powi(2)).sum::<f64>() / pixels.len() as f64;
        println!(
            "{split:5}: {n} images of {rows}x{cols}, pixel mean {mean:.4} std {:.4}, labels per class {counts:?}",
            var.sqrt()
        );
    }
    Ok(())
}
