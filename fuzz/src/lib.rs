//! Helpers shared by the fuzz targets: every kernel path this CPU can run
//! (including the sub-feature-masked ones), and the oracle comparisons.

use mixprec_kernels::{FeatureMask, Isa, Kernels, features, table, table_masked};

/// The table of every path the CPU can run, plus `avx512[-bf16]` and
/// `neon[-fp16,-fhm]` when the CPU has those features, so the kernels a CPU
/// without them would run are fuzzed too. The first entry is `scalar`.
/// The labels are printed once per process, so a run's log says which
/// paths it fuzzed.
pub fn paths() -> Vec<&'static Kernels> {
    static ONCE: std::sync::Once = std::sync::Once::new();
    let f = features();
    let mut out: Vec<&'static Kernels> = Vec::new();
    for isa in Isa::available() {
        out.extend(table(isa));
        let mask = match isa {
            Isa::Avx512 | Isa::Avx512Fp16 if f.bf16 => FeatureMask { no_bf16: true, ..FeatureMask::NONE },
            Isa::Neon if f.fp16 || f.fhm => FeatureMask { no_fp16: true, no_fhm: true, ..FeatureMask::NONE },
            _ => continue,
        };
        out.extend(table_masked(isa, mask));
    }
    ONCE.call_once(|| {
        let labels: Vec<String> = out.iter().map(|k| k.label()).collect();
        eprintln!("mixprec-fuzz: kernel paths {}", labels.join(", "));
    });
    out
}

/// Reads little-endian words from fuzz input, then zeros once it runs out.
#[derive(Debug)]
pub struct Bytes<'a> {
    data: &'a [u8],
}

impl<'a> Bytes<'a> {
    /// Reads from `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Bytes { data }
    }

    /// The next byte (0 past the end).
    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    /// The next little-endian u16.
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    /// The next little-endian u32.
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    /// Whether input is left.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// What is left.
    pub fn rest(&self) -> &'a [u8] {
        self.data
    }
}
