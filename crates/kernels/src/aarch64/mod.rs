//! aarch64 paths. Every `unsafe` block and `#[target_feature]` function of the
//! Arm kernels lives under this module; a path's functions reach callers only
//! through its table, handed out only when the CPU has the path's features.

pub mod neon;

/// Declares table entries: for each `fn name(args) -> R = body;` a safe
/// wrapper `name` that calls a `#[target_feature(enable = FEATURES)]` copy of
/// the generic `body(token, args)` (see `x86::entries`, its twin).
macro_rules! entries {
    (features = $feat:literal, token = $tok:ty;
     $( $(#[$m:meta])* fn $name:ident($($a:ident: $t:ty),* $(,)?) $(-> $r:ty)? = $body:expr; )*) => {
        $(
            $(#[$m])*
            pub(crate) fn $name($($a: $t),*) $(-> $r)? {
                #[target_feature(enable = $feat)]
                fn imp($($a: $t),*) $(-> $r)? {
                    // SAFETY: `imp` only runs where the features it is compiled for are
                    // present (see the call below), and those include the token's.
                    let s = unsafe { <$tok>::new_unchecked() };
                    $body(s, $($a),*)
                }
                // SAFETY: this wrapper is reachable only through its path's table, which
                // `dispatch::table` hands out only when the CPU has every feature in `$feat`.
                unsafe { imp($($a),*) }
            }
        )*
    };
}
pub(crate) use entries;
