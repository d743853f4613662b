//! The shipped data files are the real ones: their sha256s match the values
//! pinned by their source (see data/README.md).

use std::io::Read;

use sha2::{Digest, Sha256};

const SHIPPED: [(&str, &str); 5] = [
    ("mnist/train-images-idx3-ubyte.gz", "0b367032e93c5d0cea0925647cfdb18614af8ee15f83e6f2fc2ad904a6835971"),
    ("mnist/train-labels-idx1-ubyte.gz", "1787548bbe0bff1ec2ecdc0ef292b02df999e2d1a6002d27500982c652b17203"),
    ("mnist/t10k-images-idx3-ubyte.gz", "1a1a05eab793c14bb050b398624a11b0ffd1a2953baed553b1b9bd079e2a20be"),
    ("mnist/t10k-labels-idx1-ubyte.gz", "b91679a0acfe4ba0e50a2437a903084cba1f5f92592b016a25a7dfd00455798b"),
    ("text/shakespeare.txt.gz", "814cdba88ce934205502b489fe5ee591f1d0071185be8fdce29c30ee27b7f6ed"),
];

/// sha256 of the decompressed content, as pinned for the original MNIST files.
const CONTENT: [(&str, &str); 2] = [
    ("mnist/t10k-labels-idx1-ubyte.gz", "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
    ("text/shakespeare.txt.gz", "04decea0dd965df5e6cfc4a538b0c62623aaa3bfd848ac7fad6734e59c96624d"),
];

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn shipped_files_have_their_pinned_sha256() {
    let dir = mixprec::data::shipped_dir();
    for (name, want) in SHIPPED {
        let bytes = std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(hex(&Sha256::digest(&bytes)), want, "{name}");
    }
}

#[test]
fn shipped_content_decompresses_to_the_originals() {
    let dir = mixprec::data::shipped_dir();
    for (name, want) in CONTENT {
        let mut content = Vec::new();
        flate2::read::GzDecoder::new(std::fs::File::open(dir.join(name)).unwrap()).read_to_end(&mut content).unwrap();
        assert_eq!(hex(&Sha256::digest(&content)), want, "{name}");
    }
}
