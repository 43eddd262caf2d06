//! Newtype ids. One macro makes them all so they behave alike (str0m's `rtp/id.rs` idea).

use std::fmt;

/// Declares a `Copy` newtype over an integer with `Display`, `From` and `get()`.
macro_rules! num_id {
    ($(#[$meta:meta])* $name:ident($inner:ty)) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name($inner);

        impl $name {
            /// Wraps a raw value.
            pub const fn new(value: $inner) -> Self {
                Self(value)
            }

            /// The raw value.
            pub const fn get(self) -> $inner {
                self.0
            }
        }

        impl From<$inner> for $name {
            fn from(value: $inner) -> Self {
                Self(value)
            }
        }

        impl From<$name> for $inner {
            fn from(value: $name) -> Self {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0)
            }
        }
    };
}

num_id!(
    /// Identifies one bridged call inside this gateway process. Allocated by the call registry,
    /// never reused while the process runs.
    CallId(u64)
);

num_id!(
    /// An RTP synchronisation source (RFC 3550 §3).
    Ssrc(u32)
);

num_id!(
    /// An RTP payload type number (RFC 3551), 0..=127 on the wire.
    PayloadType(u8)
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_print_their_name() {
        let ssrc = Ssrc::from(0xdead_beef);
        assert_eq!(u32::from(ssrc), 0xdead_beef);
        assert_eq!(format!("{ssrc:?}"), "Ssrc(3735928559)");
        assert_eq!(CallId::new(7).to_string(), "7");
        assert!(PayloadType::new(0) < PayloadType::new(111));
    }
}
