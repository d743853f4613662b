//! Block sizes from cache sizes (BLIS's analytical model, simplified).
//!
//! Each micro-tile sums KC depth steps in registers while its packed A
//! (MR×KC) and B (KC×NR) micro-panels stream from L2: the A micro-panel is
//! reused by the next tile, the B block (KC×NC) comes from L3 ahead of the
//! hardware prefetchers, and the packed A block (MC×KC) is shared by all
//! threads from L3. A long KC stores each C tile few times (once when
//! k ≤ KC), which measured faster than micro-panels sized to L1. So KC
//! follows from L2, NC and MC from L3, for the micro-kernel's MR×NR and the
//! packed element size. Caches are read once from Linux's sysfs
//! (`MIXPREC_GEMM_CACHES=l1,l2,l3` overrides, e.g.
//! `32K,1M,32M`); without either, conservative sizes are assumed.

use std::sync::OnceLock;

/// A micro-kernel's register block and how it packs the depth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelShape {
    /// Rows of C per micro-tile (the broadcast side).
    pub mr: usize,
    /// Columns of C per micro-tile (the vector side).
    pub nr: usize,
    /// Depth steps per packed element: 1, or 2 for pair dot products.
    pub kpack: usize,
    /// Bytes of packed data per row (or column) and depth step.
    pub bytes_per_k: usize,
}

/// Data-cache sizes in bytes: L1d and L2 per core, L3 in total.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheSizes {
    /// L1 data cache of one core.
    pub l1d: usize,
    /// L2 of one core.
    pub l2: usize,
    /// Last-level cache.
    pub l3: usize,
}

impl CacheSizes {
    /// Sizes assumed when nothing is detected.
    pub const FALLBACK: CacheSizes = CacheSizes { l1d: 32 << 10, l2: 512 << 10, l3: 8 << 20 };

    /// Parses `l1,l2,l3` with optional `K`/`M` suffixes.
    pub fn parse(spec: &str) -> Option<CacheSizes> {
        let v: Vec<usize> = spec.split(',').map(|s| parse_size(s.trim())).collect::<Option<_>>()?;
        match v[..] {
            [l1d, l2, l3] if l1d > 0 && l2 > 0 && l3 > 0 => Some(CacheSizes { l1d, l2, l3 }),
            _ => None,
        }
    }
}

fn parse_size(s: &str) -> Option<usize> {
    let (num, mul) = match s.as_bytes().last()? {
        b'K' | b'k' => (&s[..s.len() - 1], 1 << 10),
        b'M' | b'm' => (&s[..s.len() - 1], 1 << 20),
        _ => (s, 1),
    };
    num.parse::<usize>().ok().map(|n| n * mul)
}

/// The caches GEMM blocks for: `MIXPREC_GEMM_CACHES`, else sysfs, else
/// [`CacheSizes::FALLBACK`]. Read once per process.
pub fn detected_caches() -> CacheSizes {
    static CACHES: OnceLock<CacheSizes> = OnceLock::new();
    *CACHES.get_or_init(|| {
        if let Ok(spec) = std::env::var("MIXPREC_GEMM_CACHES") {
            return CacheSizes::parse(&spec)
                .unwrap_or_else(|| panic!("MIXPREC_GEMM_CACHES={spec}: expected `l1,l2,l3` such as `32K,1M,32M`"));
        }
        sysfs_caches().unwrap_or(CacheSizes::FALLBACK)
    })
}

fn sysfs_caches() -> Option<CacheSizes> {
    let mut found = CacheSizes { l1d: 0, l2: 0, l3: 0 };
    for index in 0..8 {
        let dir = format!("/sys/devices/system/cpu/cpu0/cache/index{index}");
        let read = |f: &str| std::fs::read_to_string(format!("{dir}/{f}")).ok().map(|s| s.trim().to_owned());
        let (Some(level), Some(kind), Some(size)) = (read("level"), read("type"), read("size")) else {
            continue;
        };
        if kind == "Instruction" {
            continue;
        }
        let size = parse_size(&size)?;
        match level.as_str() {
            "1" => found.l1d = size,
            "2" => found.l2 = size,
            "3" => found.l3 = size,
            _ => {}
        }
    }
    if found.l1d == 0 || found.l2 == 0 {
        return None;
    }
    if found.l3 == 0 {
        found.l3 = found.l2;
    }
    Some(found)
}

/// The five-loop block sizes for one micro-kernel on one cache hierarchy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Blocking {
    /// Micro-tile rows.
    pub mr: usize,
    /// Micro-tile columns.
    pub nr: usize,
    /// Depth of a packed block (a multiple of 16, in depth steps of the input).
    pub kc: usize,
    /// Rows of a packed A block (a multiple of MR).
    pub mc: usize,
    /// Columns of a packed B block (a multiple of NR).
    pub nc: usize,
}

impl Blocking {
    /// Block sizes for `shape` on `caches`:
    /// - KC: a B micro-panel (KC×NR) fills an eighth of L2 (at most 4 KiB
    ///   per row or column of a panel);
    /// - NC: the B block (KC×NC) fills a sixteenth of L3;
    /// - MC: the A block (MC×KC) fills half of L3.
    pub fn new(shape: KernelShape, caches: CacheSizes) -> Blocking {
        let per_k = shape.bytes_per_k.max(1);
        let kc = round_down(caches.l2 / 8 / (shape.nr * per_k), 16).clamp(16, 4096 / per_k);
        let nc = round_down(caches.l3 / 16 / (kc * per_k), shape.nr).clamp(shape.nr, 1 << 16);
        let mc = round_down(caches.l3 / 2 / (kc * per_k), shape.mr).clamp(shape.mr, 1 << 16);
        Blocking { mr: shape.mr, nr: shape.nr, kc, mc, nc }
    }
}

impl Blocking {
    /// The blocks for one m×n×k product: each of KC, NC and MC shrunk so
    /// that the dimension splits into equal blocks (rounded up to 16 depth
    /// steps, NR columns, MR rows) instead of full blocks and a thin
    /// remainder, which would run the micro-kernel on a short depth or
    /// repack for a few columns. Depends on the shape only, never on threads.
    pub fn for_product(self, m: usize, n: usize, k: usize) -> Blocking {
        Blocking {
            kc: balanced(k, self.kc, 16),
            nc: balanced(n, self.nc, self.nr),
            mc: balanced(m, self.mc, self.mr),
            ..self
        }
    }
}

/// The block size that splits `len` into as few blocks of at most `block` as
/// possible, of equal size rounded up to `unit` (never above `block`).
pub(crate) fn balanced(len: usize, block: usize, unit: usize) -> usize {
    if len <= block {
        return block;
    }
    let blocks = len.div_ceil(block);
    len.div_ceil(blocks).div_ceil(unit).saturating_mul(unit).min(block)
}

fn round_down(x: usize, unit: usize) -> usize {
    x / unit * unit
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHAPE: KernelShape = KernelShape { mr: 14, nr: 32, kpack: 1, bytes_per_k: 4 };

    #[test]
    fn blocking_follows_the_caches() {
        let zen4 = CacheSizes { l1d: 32 << 10, l2: 1 << 20, l3: 32 << 20 };
        let b = Blocking::new(SHAPE, zen4);
        assert_eq!((b.mr, b.nr), (14, 32));
        assert_eq!(b.kc, 1024);
        assert_eq!(b.nc, 512);
        assert!(b.nc.is_multiple_of(32) && b.mc.is_multiple_of(14));
        assert!(b.kc * 32 * 4 <= zen4.l2 / 8 && b.kc * b.nc * 4 <= zen4.l3 / 16);
        assert!(b.kc * b.mc * 4 <= zen4.l3 / 2 && b.kc * (b.mc + 14) * 4 > zen4.l3 / 2);
        // A smaller L2 shortens KC (so NC and MC grow); a smaller L3 narrows
        // NC and shortens MC; L1 does not enter.
        let small_l2 = Blocking::new(SHAPE, CacheSizes { l2: 256 << 10, ..zen4 });
        assert!(small_l2.kc < b.kc && small_l2.nc > b.nc && small_l2.mc > b.mc);
        let small_l3 = Blocking::new(SHAPE, CacheSizes { l3: 2 << 20, ..zen4 });
        assert_eq!(small_l3.kc, b.kc);
        assert!(small_l3.nc < b.nc && small_l3.mc < b.mc && small_l3.mc.is_multiple_of(14));
        assert_eq!(Blocking::new(SHAPE, CacheSizes { l1d: 16 << 10, ..zen4 }), b);
        // Half-size packed elements (bf16 pairs) double the depth.
        let pairs = Blocking::new(KernelShape { bytes_per_k: 2, ..SHAPE }, zen4);
        assert_eq!(pairs.kc, 2048);
    }

    #[test]
    fn blocks_split_a_product_evenly() {
        let b = Blocking { mr: 14, nr: 32, kc: 288, mc: 14560, nc: 448 };
        let p = b.for_product(1024, 1024, 1024);
        // 1024 deep: four blocks of 256, not 3·288 + 160; 1024 wide: 3·352.
        assert_eq!((p.kc, p.nc, p.mc), (256, 352, 14560));
        assert_eq!(b.for_product(14, 32, 288), b);
        let q = b.for_product(20000, 449, 289);
        assert_eq!((q.kc, q.nc), (160, 256));
        assert!(q.mc.is_multiple_of(14) && q.mc <= b.mc && 20000usize.div_ceil(q.mc) == 2);
        for len in 1..2000 {
            let kc = b.for_product(1, 1, len).kc;
            assert!(kc <= 288 && len.div_ceil(kc) == len.div_ceil(288), "k = {len}: KC {kc}");
        }
    }

    #[test]
    fn tiny_caches_still_give_usable_blocks() {
        let b = Blocking::new(SHAPE, CacheSizes { l1d: 1024, l2: 4096, l3: 8192 });
        assert!(b.kc >= 16 && b.nc >= 32 && b.mc >= 14);
    }

    #[test]
    fn cache_specs_parse() {
        assert_eq!(CacheSizes::parse("32K, 1M,32M"), Some(CacheSizes { l1d: 32 << 10, l2: 1 << 20, l3: 32 << 20 }));
        assert_eq!(CacheSizes::parse("32K,1M"), None);
        assert_eq!(CacheSizes::parse("32K,x,1M"), None);
        let d = detected_caches();
        assert!(d.l1d >= 1024 && d.l2 >= d.l1d, "{d:?}");
    }
}
