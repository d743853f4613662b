//! Runtime ISA selection and the kernel table.
//!
//! The CPU is inspected once per process. Every ISA path has a table of
//! function pointers ([`Kernels`]) that starts as the scalar reference and is
//! then overridden by what that ISA module implements (BLIS's registry): the
//! `avx512` table starts from `avx2`'s and `avx512fp16` from `avx512`'s.
//!
//! Adding a kernel: (1) its scalar reference in `scalar/`, (2) a field in its
//! family's table (declared with `kernel_table!`), (3) one function per ISA
//! module. The cross-ISA tests and [`dispatch_report`] pick it up from there.

use std::fmt;
use std::sync::OnceLock;

/// An instruction-set path. `Display` prints the token `MIXPREC_ISA` takes.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Isa {
    /// Portable scalar Rust: the reference every other path is tested against.
    Scalar,
    /// x86-64 with AVX2, FMA and F16C.
    Avx2,
    /// x86-64 with AVX-512 F/BW/VL/DQ (and AVX-512-BF16 instructions where present).
    Avx512,
    /// x86-64 with AVX-512-FP16 on top of `Avx512`.
    Avx512Fp16,
    /// aarch64 Advanced SIMD (FP16 arithmetic and FHM where present).
    Neon,
}

impl Isa {
    /// Every path, in the order of preference from lowest to highest.
    pub const ALL: [Isa; 5] = [Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Avx512Fp16, Isa::Neon];

    /// The token `MIXPREC_ISA` takes for this path.
    pub const fn token(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
            Isa::Avx512Fp16 => "avx512fp16",
            Isa::Neon => "neon",
        }
    }

    /// Parses a `MIXPREC_ISA` token (exact, lower case).
    pub fn from_token(token: &str) -> Option<Isa> {
        Isa::ALL.into_iter().find(|isa| isa.token() == token)
    }

    /// The paths this CPU can run (after `MIXPREC_FEATURES` masking), lowest first.
    pub fn available() -> Vec<Isa> {
        Isa::ALL.into_iter().filter(|isa| isa.is_available()).collect()
    }

    /// Whether this CPU can run this path.
    pub fn is_available(self) -> bool {
        let cpu = cpu();
        match self {
            Isa::Scalar => true,
            Isa::Avx2 => cpu.avx2,
            Isa::Avx512 => cpu.avx512,
            Isa::Avx512Fp16 => cpu.avx512fp16,
            Isa::Neon => cpu.neon,
        }
    }

    /// The paths compiled into this binary for its target architecture.
    pub fn compiled() -> &'static [Isa] {
        if cfg!(target_arch = "x86_64") {
            &[Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Avx512Fp16]
        } else if cfg!(target_arch = "aarch64") {
            &[Isa::Scalar, Isa::Neon]
        } else {
            &[Isa::Scalar]
        }
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.token())
    }
}

/// Sub-features that change which instructions a path uses, after masking by
/// `MIXPREC_FEATURES` (`-bf16`, `-fp16`, `-fhm`, comma separated).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Features {
    /// x86: AVX-512-BF16 (`vcvtne2ps2bf16`, `vdpbf16ps`); aarch64: FEAT_BF16.
    pub bf16: bool,
    /// x86: AVX-512-FP16 (masking it also removes the `avx512fp16` path);
    /// aarch64: FEAT_FP16 half-precision arithmetic.
    pub fp16: bool,
    /// aarch64: FEAT_FHM (`fmlal`/`fmlal2`, f16 products accumulated in f32).
    pub fhm: bool,
}

/// What `MIXPREC_FEATURES` removes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FeatureMask {
    /// `-bf16` was given.
    pub no_bf16: bool,
    /// `-fp16` was given.
    pub no_fp16: bool,
    /// `-fhm` was given.
    pub no_fhm: bool,
}

impl FeatureMask {
    /// Removes nothing.
    pub const NONE: FeatureMask = FeatureMask { no_bf16: false, no_fp16: false, no_fhm: false };

    /// The `MIXPREC_FEATURES` spelling of this mask (empty when it removes nothing).
    pub fn spec(self) -> String {
        let items = [(self.no_bf16, "-bf16"), (self.no_fp16, "-fp16"), (self.no_fhm, "-fhm")];
        items.iter().filter(|(on, _)| *on).map(|(_, s)| *s).collect::<Vec<_>>().join(",")
    }

    fn index(self) -> usize {
        self.no_bf16 as usize | (self.no_fp16 as usize) << 1 | (self.no_fhm as usize) << 2
    }

    /// Parses a `MIXPREC_FEATURES` value such as `-bf16,-fhm`; the error names
    /// the item that is not understood.
    pub fn parse(spec: &str) -> Result<FeatureMask, String> {
        let mut mask = FeatureMask::default();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match item {
                "-bf16" => mask.no_bf16 = true,
                "-fp16" => mask.no_fp16 = true,
                "-fhm" => mask.no_fhm = true,
                other => {
                    return Err(format!(
                        "MIXPREC_FEATURES: unknown item `{other}` (expected a comma-separated list of -bf16, -fp16, -fhm)"
                    ));
                }
            }
        }
        Ok(mask)
    }

    fn apply(self, f: Features) -> Features {
        Features { bf16: f.bf16 && !self.no_bf16, fp16: f.fp16 && !self.no_fp16, fhm: f.fhm && !self.no_fhm }
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Cpu {
    avx2: bool,
    avx512: bool,
    avx512fp16: bool,
    neon: bool,
    features: Features,
}

fn cpu() -> &'static Cpu {
    static CPU: OnceLock<Cpu> = OnceLock::new();
    CPU.get_or_init(|| {
        let mask = match std::env::var("MIXPREC_FEATURES") {
            Ok(spec) => FeatureMask::parse(&spec).unwrap_or_else(|e| panic!("{e}")),
            Err(_) => FeatureMask::default(),
        };
        detect(mask)
    })
}

#[cfg(target_arch = "x86_64")]
fn detect(mask: FeatureMask) -> Cpu {
    let avx2 = std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma")
        && std::arch::is_x86_feature_detected!("f16c");
    let avx512 = avx2
        && std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
        && std::arch::is_x86_feature_detected!("avx512vl")
        && std::arch::is_x86_feature_detected!("avx512dq");
    let features = mask.apply(Features {
        bf16: avx512 && std::arch::is_x86_feature_detected!("avx512bf16"),
        fp16: avx512 && std::arch::is_x86_feature_detected!("avx512fp16"),
        fhm: false,
    });
    Cpu { avx2, avx512, avx512fp16: features.fp16, neon: false, features }
}

#[cfg(target_arch = "aarch64")]
fn detect(mask: FeatureMask) -> Cpu {
    let neon = std::arch::is_aarch64_feature_detected!("neon");
    let features = mask.apply(Features {
        bf16: neon && std::arch::is_aarch64_feature_detected!("bf16"),
        fp16: neon && std::arch::is_aarch64_feature_detected!("fp16"),
        fhm: neon && std::arch::is_aarch64_feature_detected!("fp16") && std::arch::is_aarch64_feature_detected!("fhm"),
    });
    Cpu { avx2: false, avx512: false, avx512fp16: false, neon, features }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn detect(_mask: FeatureMask) -> Cpu {
    Cpu::default()
}

/// The CPU's sub-features after `MIXPREC_FEATURES` masking.
pub fn features() -> Features {
    cpu().features
}

/// The path every public kernel runs on: `MIXPREC_ISA` if set, otherwise the
/// best available. Read once per process.
///
/// # Panics
/// If `MIXPREC_ISA` names an unknown token or a path this CPU cannot run; the
/// message names the token and the available paths. No illegal instruction is
/// ever executed instead.
pub fn active_isa() -> Isa {
    static ACTIVE: OnceLock<Isa> = OnceLock::new();
    *ACTIVE.get_or_init(|| {
        let requested = std::env::var("MIXPREC_ISA").ok().filter(|s| !s.trim().is_empty());
        select_isa(requested.as_deref(), &Isa::available()).unwrap_or_else(|e| panic!("{e}"))
    })
}

/// Chooses a path from a requested token (or the best of `available` when none).
pub fn select_isa(requested: Option<&str>, available: &[Isa]) -> Result<Isa, String> {
    let list = || available.iter().map(|i| i.token()).collect::<Vec<_>>().join(", ");
    match requested.map(str::trim) {
        None => Ok(available.iter().copied().max().unwrap_or(Isa::Scalar)),
        Some(token) => match Isa::from_token(token) {
            Some(isa) if available.contains(&isa) => Ok(isa),
            Some(isa) => {
                Err(format!("MIXPREC_ISA={token}: this CPU cannot run the `{isa}` path (available: {})", list()))
            }
            None => Err(format!(
                "MIXPREC_ISA={token}: unknown ISA token (known: scalar, avx2, avx512, avx512fp16, neon; available here: {})",
                list()
            )),
        },
    }
}

/// One table entry: a function pointer and the name of the implementation
/// behind it (`<op>_<dtype>_<isa>`), so a silent scalar fallback is visible.
#[derive(Clone, Copy)]
pub struct Kernel<F> {
    /// The implementation.
    pub f: F,
    /// Its function name.
    pub name: &'static str,
}

impl<F> fmt::Debug for Kernel<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// Declares a family's table: a struct of [`Kernel`] entries plus `entries()`.
macro_rules! kernel_table {
    ($(#[$m:meta])* pub struct $T:ident { $( $(#[$fm:meta])* $field:ident : $ty:ty ),* $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug)]
        pub struct $T { $( $(#[$fm])* pub $field: $crate::dispatch::Kernel<$ty>, )* }

        impl $T {
            /// `(kernel, implementation)` for every entry.
            pub fn entries(&self) -> Vec<(&'static str, &'static str)> {
                vec![$( (stringify!($field), self.$field.name) ),*]
            }
        }
    };
}
pub(crate) use kernel_table;

/// Builds a [`Kernel`] from a function path; the name is the last segment.
macro_rules! kernel {
    (@go [$($p:ident)*] $f:ident) => {
        $crate::dispatch::Kernel { f: $($p ::)* $f, name: stringify!($f) }
    };
    (@go [$($p:ident)*] $h:ident :: $($t:tt)+) => {
        $crate::dispatch::kernel!(@go [$($p)* $h] $($t)+)
    };
    ($($t:tt)+) => {
        $crate::dispatch::kernel!(@go [] $($t)+)
    };
}
pub(crate) use kernel;

/// Every kernel of one ISA path, grouped by family.
#[derive(Clone, Copy, Debug)]
pub struct Kernels {
    /// The path this table belongs to.
    pub isa: Isa,
    /// The sub-features its kernels were chosen for.
    pub features: Features,
    /// f32 ↔ f16/bf16 casts.
    pub convert: crate::convert::Table,
    /// Loss-scaling and gradient checks.
    pub amp: crate::amp::Table,
    /// Matrix products.
    pub gemm: crate::gemm::Table,
    /// Elementwise arithmetic, unary math and derivatives.
    pub ew: crate::ew::Table,
    /// Reductions and softmax along rows or columns.
    pub reduce: crate::reduce::Table,
    /// Loss functions.
    pub loss: crate::loss::Table,
    /// Optimizer updates on FP32 master weights.
    pub optim: crate::optim::Table,
    /// Batch-norm passes.
    pub norm: crate::norm::Table,
}

impl Kernels {
    /// The path's token, followed by the sub-features masked off beyond
    /// `MIXPREC_FEATURES` when the table came from [`table_masked`]
    /// (`avx512[-bf16]`).
    pub fn label(&self) -> String {
        let full = cpu().features;
        let mask = FeatureMask {
            no_bf16: full.bf16 && !self.features.bf16,
            no_fp16: full.fp16 && !self.features.fp16,
            no_fhm: full.fhm && !self.features.fhm,
        };
        if mask == FeatureMask::NONE { self.isa.to_string() } else { format!("{}[{}]", self.isa, mask.spec()) }
    }

    /// `(family.kernel, implementation)` for every entry.
    pub fn entries(&self) -> Vec<(String, &'static str)> {
        let families: [(&str, Vec<(&'static str, &'static str)>); 8] = [
            ("convert", self.convert.entries()),
            ("amp", self.amp.entries()),
            ("gemm", self.gemm.entries()),
            ("ew", self.ew.entries()),
            ("reduce", self.reduce.entries()),
            ("loss", self.loss.entries()),
            ("optim", self.optim.entries()),
            ("norm", self.norm.entries()),
        ];
        families
            .into_iter()
            .flat_map(|(family, entries)| entries.into_iter().map(move |(k, imp)| (format!("{family}.{k}"), imp)))
            .collect()
    }
}

fn build(isa: Isa, features: Features) -> Kernels {
    let mut k = crate::scalar::table();
    match isa {
        Isa::Scalar => {}
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => crate::x86::avx2::install(&mut k, features),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => {
            crate::x86::avx2::install(&mut k, features);
            crate::x86::avx512::install(&mut k, features);
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512Fp16 => {
            crate::x86::avx2::install(&mut k, features);
            crate::x86::avx512::install(&mut k, features);
            crate::x86::avx512fp16::install(&mut k, features);
        }
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => crate::aarch64::neon::install(&mut k, features),
        #[allow(unreachable_patterns)]
        _ => {}
    }
    k.isa = isa;
    k.features = features;
    k
}

/// The table of one path, or `None` when this CPU cannot run it. Tests use
/// this to reach every path directly, whatever `MIXPREC_ISA` says.
pub fn table(isa: Isa) -> Option<&'static Kernels> {
    static TABLES: [OnceLock<Kernels>; 5] = [const { OnceLock::new() }; 5];
    if !isa.is_available() {
        return None;
    }
    let slot = &TABLES[Isa::ALL.iter().position(|&i| i == isa).unwrap_or(0)];
    Some(slot.get_or_init(|| build(isa, cpu().features)))
}

/// The table of one path with `mask`'s sub-features removed on top of
/// `MIXPREC_FEATURES` (a mask can only remove what the CPU has, so the table
/// is always safe to run), or `None` when this CPU cannot run the path so
/// masked (`avx512fp16` needs fp16). Tests use this to run, in one process,
/// the AVX-512-without-BF16 and NEON-without-FP16 kernels a CPU with those
/// features would otherwise never reach.
pub fn table_masked(isa: Isa, mask: FeatureMask) -> Option<&'static Kernels> {
    static TABLES: [OnceLock<Kernels>; 5 * 8] = [const { OnceLock::new() }; 5 * 8];
    if !isa.is_available() || (isa == Isa::Avx512Fp16 && mask.no_fp16) {
        return None;
    }
    let slot = &TABLES[Isa::ALL.iter().position(|&i| i == isa).unwrap_or(0) * 8 + mask.index()];
    Some(slot.get_or_init(|| build(isa, mask.apply(cpu().features))))
}

/// The active path's table (the one public kernels call).
#[inline]
pub(crate) fn active() -> &'static Kernels {
    static ACTIVE: OnceLock<&'static Kernels> = OnceLock::new();
    ACTIVE.get_or_init(|| table(active_isa()).unwrap_or_else(|| panic!("active ISA {} has no table", active_isa())))
}

/// Which implementation every kernel uses on every path compiled for this
/// architecture (available or not), and which path is active.
#[derive(Clone, Debug)]
pub struct DispatchReport {
    /// The paths in the columns.
    pub isas: Vec<Isa>,
    /// `(family.kernel, implementation per path in `isas` order)`.
    pub rows: Vec<(String, Vec<&'static str>)>,
    /// The active path, if it could be chosen.
    pub active: Result<Isa, String>,
    /// The CPU's sub-features after masking.
    pub features: Features,
}

impl DispatchReport {
    /// The implementation `kernel` (`family.kernel`) uses on `isa`.
    pub fn implementation(&self, kernel: &str, isa: Isa) -> Option<&'static str> {
        let col = self.isas.iter().position(|&i| i == isa)?;
        self.rows.iter().find(|(k, _)| k == kernel).map(|(_, imps)| imps[col])
    }
}

impl fmt::Display for DispatchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.active {
            Ok(isa) => writeln!(f, "active ISA: {isa}")?,
            Err(e) => writeln!(f, "active ISA: none ({e})")?,
        }
        let avail: Vec<_> = Isa::available().iter().map(|i| i.token()).collect();
        writeln!(f, "available: {}; features: {:?}", avail.join(", "), self.features)?;
        let w0 = self.rows.iter().map(|(k, _)| k.len()).max().unwrap_or(6).max(6);
        let widths: Vec<usize> = (0..self.isas.len())
            .map(|c| self.rows.iter().map(|(_, imps)| imps[c].len()).max().unwrap_or(0).max(self.isas[c].token().len()))
            .collect();
        write!(f, "{:w0$}", "kernel")?;
        for (isa, w) in self.isas.iter().zip(&widths) {
            write!(f, "  {:w$}", isa.token(), w = *w)?;
        }
        writeln!(f)?;
        for (k, imps) in &self.rows {
            write!(f, "{k:w0$}")?;
            for (imp, w) in imps.iter().zip(&widths) {
                write!(f, "  {imp:w$}", w = *w)?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

/// Lists, per kernel, the implementation each compiled path uses.
pub fn dispatch_report() -> DispatchReport {
    let isas: Vec<Isa> = Isa::compiled().to_vec();
    // Tables of paths this CPU lacks are built only to read their names; their
    // function pointers never leave this function.
    let tables: Vec<Kernels> = isas.iter().map(|&isa| build(isa, features())).collect();
    let mut rows: Vec<(String, Vec<&'static str>)> =
        tables[0].entries().into_iter().map(|(k, _)| (k, Vec::new())).collect();
    for t in &tables {
        for (row, (_, imp)) in rows.iter_mut().zip(t.entries()) {
            row.1.push(imp);
        }
    }
    let requested = std::env::var("MIXPREC_ISA").ok().filter(|s| !s.trim().is_empty());
    DispatchReport { isas, rows, active: select_isa(requested.as_deref(), &Isa::available()), features: features() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        for isa in Isa::ALL {
            assert_eq!(Isa::from_token(isa.token()), Some(isa));
            assert_eq!(isa.to_string(), isa.token());
        }
        assert_eq!(Isa::from_token("AVX2"), None);
        assert_eq!(Isa::from_token("sse2"), None);
    }

    #[test]
    fn select_prefers_the_best_and_rejects_unknown_or_missing_paths() {
        let avail = [Isa::Scalar, Isa::Avx2, Isa::Avx512];
        assert_eq!(select_isa(None, &avail), Ok(Isa::Avx512));
        assert_eq!(select_isa(Some("avx2"), &avail), Ok(Isa::Avx2));
        assert_eq!(select_isa(Some(" scalar "), &avail), Ok(Isa::Scalar));
        let e = select_isa(Some("avx512fp16"), &avail).unwrap_err();
        assert!(e.contains("avx512fp16") && e.contains("scalar, avx2, avx512"), "{e}");
        let e = select_isa(Some("sse9"), &avail).unwrap_err();
        assert!(e.contains("sse9") && e.contains("unknown"), "{e}");
    }

    #[test]
    fn feature_mask_parses_and_names_bad_items() {
        assert_eq!(FeatureMask::parse(""), Ok(FeatureMask::default()));
        let m = FeatureMask::parse("-bf16, -fhm").unwrap();
        assert!(m.no_bf16 && m.no_fhm && !m.no_fp16);
        let all = Features { bf16: true, fp16: true, fhm: true };
        assert_eq!(m.apply(all), Features { bf16: false, fp16: true, fhm: false });
        let e = FeatureMask::parse("-bf16,+avx").unwrap_err();
        assert!(e.contains("+avx"), "{e}");
    }

    #[test]
    fn scalar_is_always_available_and_tables_match_their_isa() {
        assert!(Isa::available().contains(&Isa::Scalar));
        for isa in Isa::available() {
            assert_eq!(table(isa).unwrap().isa, isa);
        }
        for isa in Isa::ALL.into_iter().filter(|i| !i.is_available()) {
            assert!(table(isa).is_none());
        }
    }

    #[test]
    fn report_has_one_column_per_compiled_path() {
        let r = dispatch_report();
        assert_eq!(r.isas, Isa::compiled());
        assert!(r.rows.iter().all(|(_, imps)| imps.len() == r.isas.len()));
        assert!(r.implementation("convert.f32_to_f16", Isa::Scalar).unwrap().ends_with("_scalar"));
        let text = r.to_string();
        assert!(text.contains("convert.f32_to_f16"), "{text}");
    }
}
