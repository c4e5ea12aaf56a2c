//! Abstract values of scalars: a tristate number (known bits) together with unsigned and
//! signed 64-bit ranges, kept consistent with each other as the kernel's `reg_bounds_sync`.

use std::fmt;

/// A tristate number: bits set in `mask` are unknown, the others are those of `value`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tnum {
    pub value: u64,
    pub mask: u64,
}

#[allow(clippy::should_implement_trait)]
impl Tnum {
    pub const UNKNOWN: Tnum = Tnum {
        value: 0,
        mask: u64::MAX,
    };

    pub const fn constant(v: u64) -> Tnum {
        Tnum { value: v, mask: 0 }
    }

    pub fn is_const(self) -> bool {
        self.mask == 0
    }

    /// The tnum of all values in `[min, max]`.
    pub fn range(min: u64, max: u64) -> Tnum {
        let chi = min ^ max;
        let bits = 64 - chi.leading_zeros();
        if bits > 63 {
            return Tnum::UNKNOWN;
        }
        let delta = (1u64 << bits) - 1;
        Tnum {
            value: min & !delta,
            mask: delta,
        }
    }

    pub fn add(self, b: Tnum) -> Tnum {
        let sm = self.mask.wrapping_add(b.mask);
        let sv = self.value.wrapping_add(b.value);
        let sigma = sm.wrapping_add(sv);
        let chi = sigma ^ sv;
        let mu = chi | self.mask | b.mask;
        Tnum {
            value: sv & !mu,
            mask: mu,
        }
    }

    pub fn sub(self, b: Tnum) -> Tnum {
        let dv = self.value.wrapping_sub(b.value);
        let alpha = dv.wrapping_add(self.mask);
        let beta = dv.wrapping_sub(b.mask);
        let chi = alpha ^ beta;
        let mu = chi | self.mask | b.mask;
        Tnum {
            value: dv & !mu,
            mask: mu,
        }
    }

    pub fn and(self, b: Tnum) -> Tnum {
        let alpha = self.value | self.mask;
        let beta = b.value | b.mask;
        let v = self.value & b.value;
        Tnum {
            value: v,
            mask: alpha & beta & !v,
        }
    }

    pub fn or(self, b: Tnum) -> Tnum {
        let v = self.value | b.value;
        let mu = self.mask | b.mask;
        Tnum {
            value: v,
            mask: mu & !v,
        }
    }

    pub fn xor(self, b: Tnum) -> Tnum {
        let v = self.value ^ b.value;
        let mu = self.mask | b.mask;
        Tnum {
            value: v & !mu,
            mask: mu,
        }
    }

    pub fn mul(self, b: Tnum) -> Tnum {
        if self.is_const() && b.is_const() {
            return Tnum::constant(self.value.wrapping_mul(b.value));
        }
        // Shift-and-add over the known bits of `self`, as the kernel's tnum_mul.
        let mut a = self;
        let mut b = b;
        let acc_v = a.value.wrapping_mul(b.value);
        let mut acc_m = Tnum::constant(0);
        while a.value != 0 || a.mask != 0 {
            if a.value & 1 != 0 {
                acc_m = acc_m.add(Tnum {
                    value: 0,
                    mask: b.mask,
                });
            } else if a.mask & 1 != 0 {
                acc_m = acc_m.add(Tnum {
                    value: 0,
                    mask: b.value | b.mask,
                });
            }
            a = a.rshift(1);
            b = b.lshift(1);
        }
        Tnum::constant(acc_v).add(acc_m)
    }

    pub fn lshift(self, s: u32) -> Tnum {
        Tnum {
            value: self.value.wrapping_shl(s),
            mask: self.mask.wrapping_shl(s),
        }
    }

    pub fn rshift(self, s: u32) -> Tnum {
        Tnum {
            value: self.value.wrapping_shr(s),
            mask: self.mask.wrapping_shr(s),
        }
    }

    pub fn arshift(self, s: u32, bits: u32) -> Tnum {
        if bits == 32 {
            Tnum {
                value: ((self.value as i32).wrapping_shr(s) as u32) as u64,
                mask: ((self.mask as i32).wrapping_shr(s) as u32) as u64,
            }
        } else {
            Tnum {
                value: (self.value as i64).wrapping_shr(s) as u64,
                mask: (self.mask as i64).wrapping_shr(s) as u64,
            }
        }
    }

    /// The low 32 bits, zero-extended.
    pub fn cast32(self) -> Tnum {
        Tnum {
            value: self.value & 0xffff_ffff,
            mask: self.mask & 0xffff_ffff,
        }
    }

    /// Whether every value of `b` is a value of `self`.
    pub fn contains(self, b: Tnum) -> bool {
        if b.mask & !self.mask != 0 {
            return false;
        }
        self.value == b.value & !self.mask
    }

    pub fn umin(self) -> u64 {
        self.value
    }

    pub fn umax(self) -> u64 {
        self.value | self.mask
    }

    pub fn intersect(self, b: Tnum) -> Tnum {
        let v = self.value | b.value;
        let mu = self.mask & b.mask;
        Tnum {
            value: v & !mu,
            mask: mu,
        }
    }
}

impl fmt::Display for Tnum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({:#x}; {:#x})", self.value, self.mask)
    }
}

/// The value set of a scalar register (or the variable part of a pointer's offset).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Scalar {
    pub tnum: Tnum,
    pub umin: u64,
    pub umax: u64,
    pub smin: i64,
    pub smax: i64,
}

impl Default for Scalar {
    fn default() -> Self {
        Scalar::UNKNOWN
    }
}

impl Scalar {
    pub const UNKNOWN: Scalar = Scalar {
        tnum: Tnum::UNKNOWN,
        umin: 0,
        umax: u64::MAX,
        smin: i64::MIN,
        smax: i64::MAX,
    };

    pub fn constant(v: u64) -> Scalar {
        Scalar {
            tnum: Tnum::constant(v),
            umin: v,
            umax: v,
            smin: v as i64,
            smax: v as i64,
        }
    }

    pub fn unsigned_range(min: u64, max: u64) -> Scalar {
        let mut s = Scalar {
            tnum: Tnum::range(min, max),
            umin: min,
            umax: max,
            smin: i64::MIN,
            smax: i64::MAX,
        };
        s.sync();
        s
    }

    pub fn signed_range(min: i64, max: i64) -> Scalar {
        let mut s = Scalar {
            tnum: Tnum::UNKNOWN,
            umin: 0,
            umax: u64::MAX,
            smin: min,
            smax: max,
        };
        s.sync();
        s
    }

    pub fn from_tnum(t: Tnum) -> Scalar {
        let mut s = Scalar {
            tnum: t,
            ..Scalar::UNKNOWN
        };
        s.sync();
        s
    }

    pub fn is_const(&self) -> bool {
        self.tnum.is_const()
    }

    pub fn const_value(&self) -> Option<u64> {
        self.is_const().then_some(self.tnum.value)
    }

    /// Whether some value is possible (refinement on an impossible branch empties it).
    pub fn is_empty(&self) -> bool {
        self.umin > self.umax
            || self.smin > self.smax
            || self.tnum.value & self.tnum.mask != 0
            || self.tnum.umin() > self.umax
            || self.tnum.umax() < self.umin
    }

    /// Makes the three views agree (the kernel's `reg_bounds_sync`).
    pub fn sync(&mut self) {
        for _ in 0..2 {
            // From the tnum.
            self.umin = self.umin.max(self.tnum.umin());
            self.umax = self.umax.min(self.tnum.umax());
            let tsmin = (self.tnum.value | (self.tnum.mask & (1 << 63))) as i64;
            let tsmax = (self.tnum.value | (self.tnum.mask & !(1 << 63))) as i64;
            self.smin = self.smin.max(tsmin);
            self.smax = self.smax.min(tsmax);
            // Signed and unsigned ranges inform each other when the sign is known.
            if self.smin >= 0 || self.smax < 0 {
                // The signed range lies in one half of the unsigned one: narrow the
                // unsigned range to it first, so that it too lies in that half (an
                // unsigned bound of the other half, cast, would empty the signed range).
                self.umin = self.umin.max(self.smin as u64);
                self.umax = self.umax.min(self.smax as u64);
                if self.umin <= self.umax {
                    self.smin = self.smin.max(self.umin as i64);
                    self.smax = self.smax.min(self.umax as i64);
                }
            } else if (self.umax as i64) >= 0 {
                // umax < 2^63: the value is non-negative.
                self.smin = self.umin as i64;
                self.smax = self.smax.min(self.umax as i64);
                self.umax = self.umax.min(self.smax as u64);
            } else if (self.umin as i64) < 0 {
                // umin >= 2^63: the value is negative.
                self.smin = self.smin.max(self.umin as i64);
                self.smax = self.umax as i64;
            }
            if self.umin <= self.umax {
                self.tnum = self.tnum.intersect(Tnum::range(self.umin, self.umax));
            }
        }
    }

    /// Whether every value of `b` is a value of `self` (for state pruning).
    pub fn contains(&self, b: &Scalar) -> bool {
        self.umin <= b.umin
            && self.umax >= b.umax
            && self.smin <= b.smin
            && self.smax >= b.smax
            && self.tnum.contains(b.tnum)
    }

    /// Zero-extends the low 32 bits (the result of every 32-bit ALU operation).
    pub fn zext32(&self) -> Scalar {
        if self.umax <= u32::MAX as u64 {
            return *self;
        }
        let mut s = Scalar::from_tnum(self.tnum.cast32());
        if self.umin >> 32 == self.umax >> 32 {
            s.umin = s.umin.max(self.umin & 0xffff_ffff);
            s.umax = s.umax.min(self.umax & 0xffff_ffff);
            s.sync();
        }
        s
    }

    /// Sign-extends the low `bits` bits.
    pub fn sext(&self, bits: u32) -> Scalar {
        if let Some(v) = self.const_value() {
            let sh = 64 - bits;
            return Scalar::constant((((v << sh) as i64) >> sh) as u64);
        }
        let half = 1i64 << (bits - 1);
        if self.umax < half as u64 {
            return *self;
        }
        Scalar::signed_range(-half, half - 1)
    }

    /// Truncates to the low `bytes` bytes.
    pub fn truncate(&self, bytes: usize) -> Scalar {
        if bytes >= 8 {
            return *self;
        }
        let max = (1u64 << (bytes * 8)) - 1;
        if self.umax <= max {
            return *self;
        }
        let mut s = Scalar::from_tnum(Tnum {
            value: self.tnum.value & max,
            mask: self.tnum.mask & max,
        });
        s.umax = s.umax.min(max);
        s.sync();
        s
    }

    pub fn add(&self, b: &Scalar) -> Scalar {
        let mut r = Scalar::from_tnum(self.tnum.add(b.tnum));
        if let (Some(lo), Some(hi)) = (self.umin.checked_add(b.umin), self.umax.checked_add(b.umax))
        {
            r.umin = r.umin.max(lo);
            r.umax = r.umax.min(hi);
        }
        if let (Some(lo), Some(hi)) = (self.smin.checked_add(b.smin), self.smax.checked_add(b.smax))
        {
            r.smin = r.smin.max(lo);
            r.smax = r.smax.min(hi);
        }
        r.sync();
        r
    }

    pub fn sub(&self, b: &Scalar) -> Scalar {
        let mut r = Scalar::from_tnum(self.tnum.sub(b.tnum));
        if self.umin >= b.umax {
            r.umin = r.umin.max(self.umin - b.umax);
            r.umax = r.umax.min(self.umax - b.umin);
        }
        if let (Some(lo), Some(hi)) = (self.smin.checked_sub(b.smax), self.smax.checked_sub(b.smin))
        {
            r.smin = r.smin.max(lo);
            r.smax = r.smax.min(hi);
        }
        r.sync();
        r
    }

    pub fn mul(&self, b: &Scalar) -> Scalar {
        let mut r = Scalar::from_tnum(self.tnum.mul(b.tnum));
        if let Some(hi) = self.umax.checked_mul(b.umax) {
            r.umin = r.umin.max(self.umin * b.umin);
            r.umax = r.umax.min(hi);
        }
        r.sync();
        r
    }

    pub fn and(&self, b: &Scalar) -> Scalar {
        let mut r = Scalar::from_tnum(self.tnum.and(b.tnum));
        r.umax = r.umax.min(self.umax).min(b.umax);
        if self.smin >= 0 || b.smin >= 0 {
            r.smin = r.smin.max(0);
        }
        r.sync();
        r
    }

    pub fn or(&self, b: &Scalar) -> Scalar {
        let mut r = Scalar::from_tnum(self.tnum.or(b.tnum));
        r.umin = r.umin.max(self.umin).max(b.umin);
        r.sync();
        r
    }

    pub fn xor(&self, b: &Scalar) -> Scalar {
        Scalar::from_tnum(self.tnum.xor(b.tnum))
    }

    pub fn lsh(&self, s: u32) -> Scalar {
        let mut r = Scalar::from_tnum(self.tnum.lshift(s));
        if s < 64 && self.umax.leading_zeros() >= s {
            r.umin = r.umin.max(self.umin << s);
            r.umax = r.umax.min(self.umax << s);
        }
        r.sync();
        r
    }

    pub fn rsh(&self, s: u32) -> Scalar {
        let mut r = Scalar::from_tnum(self.tnum.rshift(s));
        r.umin = r.umin.max(self.umin >> s);
        r.umax = r.umax.min(self.umax >> s);
        r.sync();
        r
    }

    pub fn arsh(&self, s: u32) -> Scalar {
        let mut r = Scalar::from_tnum(self.tnum.arshift(s, 64));
        r.smin = r.smin.max(self.smin >> s);
        r.smax = r.smax.min(self.smax >> s);
        r.sync();
        r
    }

    /// The values of `self` that also satisfy `[umin, umax]` unsigned.
    pub fn clamp_u(&self, umin: u64, umax: u64) -> Scalar {
        let mut r = *self;
        r.umin = r.umin.max(umin);
        r.umax = r.umax.min(umax);
        r.sync();
        r
    }

    pub fn clamp_s(&self, smin: i64, smax: i64) -> Scalar {
        let mut r = *self;
        r.smin = r.smin.max(smin);
        r.smax = r.smax.min(smax);
        r.sync();
        r
    }
}

impl fmt::Display for Scalar {
    /// The kernel's verbose form: `0`, `scalar()`, `scalar(umax=255,var_off=(0x0; 0xff))`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(v) = self.const_value() {
            return write!(f, "{}", v as i64);
        }
        let mut parts = Vec::new();
        if self.smin != i64::MIN && self.smin as u64 != self.umin {
            parts.push(format!("smin={}", self.smin));
        }
        if self.smax != i64::MAX && self.smax as u64 != self.umax {
            parts.push(format!("smax={}", self.smax));
        }
        if self.umin != 0 {
            parts.push(format!("umin={}", self.umin));
        }
        if self.umax != u64::MAX {
            parts.push(format!("umax={}", self.umax));
        }
        if self.tnum != Tnum::UNKNOWN && !(self.tnum == Tnum::range(self.umin, self.umax)) {
            parts.push(format!("var_off={}", self.tnum));
        }
        write!(f, "scalar({})", parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_arithmetic() {
        let a = Scalar::unsigned_range(0, 10);
        let b = Scalar::constant(5);
        let s = a.add(&b);
        assert_eq!((s.umin, s.umax), (5, 15));
        let m = Scalar::UNKNOWN.and(&Scalar::constant(0xff));
        assert_eq!((m.umin, m.umax), (0, 255));
        assert!(m.smin >= 0);
        let sh = m.lsh(2);
        assert_eq!(sh.umax, 1020);
        assert!(Scalar::UNKNOWN.contains(&sh));
        assert!(!sh.contains(&Scalar::UNKNOWN));
        assert!(Scalar::constant(3).contains(&Scalar::constant(3)));
        assert!(!Scalar::constant(3).contains(&Scalar::constant(4)));
        assert_eq!(
            Scalar::constant(u64::MAX).zext32().const_value(),
            Some(0xffff_ffff)
        );
        assert_eq!(
            Scalar::constant(0x80).sext(8).const_value(),
            Some(-128i64 as u64)
        );
    }

    #[test]
    fn tnum_contains() {
        let t = Tnum::range(0, 15);
        assert!(t.contains(Tnum::constant(7)));
        assert!(!t.contains(Tnum::constant(16)));
        assert!(Tnum::UNKNOWN.contains(t));
        assert!(!t.contains(Tnum::UNKNOWN));
    }

    /// A signed range in one half narrows the unsigned range to that half, and is not
    /// emptied by an unsigned bound of the other half.
    #[test]
    fn sync_keeps_signed_halves() {
        let mut pos = Scalar::UNKNOWN;
        pos.smin = 1;
        pos.sync();
        assert!(!pos.is_empty());
        assert_eq!((pos.umin, pos.umax), (1, i64::MAX as u64));
        assert_eq!((pos.smin, pos.smax), (1, i64::MAX));
        let mut neg = Scalar::UNKNOWN;
        neg.smax = -1;
        neg.sync();
        assert!(!neg.is_empty());
        assert_eq!((neg.umin, neg.umax), (1 << 63, u64::MAX));
        assert_eq!((neg.smin, neg.smax), (i64::MIN, -1));
    }
}
