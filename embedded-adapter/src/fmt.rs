//! Logging that goes to defmt with the `defmt` feature and nowhere without.

#[cfg(feature = "defmt")]
macro_rules! log_info {
    ($($arg:tt)*) => { ::defmt::info!($($arg)*) };
}

#[cfg(not(feature = "defmt"))]
macro_rules! log_info {
    ($($arg:tt)*) => {{
        // Type-check the arguments, log nothing.
        let _ = || { let _ = ($($arg)*,); };
    }};
}

pub(crate) use log_info;
