using System.Numerics;
using System.Runtime.Intrinsics;

namespace DriverAudit.Scanner.Code;

/// <summary>
/// Whether bytes a weak descent decoded look like data rather than code: a run of 8 printable ASCII bytes
/// (0x20–0x7E), 8 zero bytes, or 6 printable UTF-16LE characters (a printable byte then a zero, at an even offset
/// from the start). Compiled code almost never holds these; strings and tables do. Searched 64 bytes at a time
/// with vector compares and bit masks; <see cref="AnyScalar"/> is the byte-by-byte definition.
/// </summary>
internal static class DataRuns
{
    private const int TextRun = 8, ZeroRun = 8, WideRun = 6;

    public static bool Any(ReadOnlySpan<byte> bytes) => Any(bytes, bytes.Length);

    /// <summary>
    /// <see cref="Any(ReadOnlySpan{byte})"/> over the first <paramref name="length"/> bytes of <paramref name="readable"/>.
    /// The bytes after them may be loaded but never count: a last partial chunk is then compared whole and masked,
    /// instead of byte by byte (the blocks a weak descent decodes are mostly shorter than one chunk).
    /// </summary>
    public static bool Any(ReadOnlySpan<byte> readable, int length)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(length, readable.Length);
        // Run lengths carried across 64-byte chunks: trailing printable bytes, trailing zeros, trailing UTF-16 pairs.
        int text = 0, zeros = 0, wide = 0;
        var at = 0;
        if (Vector128.IsHardwareAccelerated)
        {
            for (; at < length && at + 64 <= readable.Length; at += 64)
            {
                var chunk = readable.Slice(at, 64);
                ulong t = 0, z = 0;
                for (var k = 0; k < 4; k++)
                {
                    var v = Vector128.Create(chunk.Slice(16 * k, 16));
                    t |= (ulong)Vector128.LessThan(v - Vector128.Create((byte)0x20), Vector128.Create((byte)0x5F)).ExtractMostSignificantBits() << (16 * k);
                    z |= (ulong)Vector128.Equals(v, Vector128<byte>.Zero).ExtractMostSignificantBits() << (16 * k);
                }
                var valid = length - at;
                if (valid < 64)
                {
                    // Bytes past the end are neither text nor zero: no run reaches into them.
                    var keep = (1UL << valid) - 1;
                    t &= keep;
                    z &= keep;
                }
                // Pair ending at odd offset i: printable at i - 1, zero at i. Chunks start at even offsets, so odd bits.
                var pairs = OddBits((t << 1) & z);
                if (Run(t, 64, TextRun, ref text) || Run(z, 64, ZeroRun, ref zeros) || Run(pairs, 32, WideRun, ref wide)) return true;
            }
        }
        return at < length && Scalar(readable[..length], at, text, zeros, wide);
    }

    /// <summary>The definition: one byte at a time.</summary>
    internal static bool AnyScalar(ReadOnlySpan<byte> bytes) => Scalar(bytes, 0, 0, 0, 0);

    private static bool Scalar(ReadOnlySpan<byte> bytes, int from, int text, int zeros, int wide)
    {
        for (var i = from; i < bytes.Length; i++)
        {
            var b = bytes[i];
            text = IsText(b) ? text + 1 : 0;
            zeros = b == 0 ? zeros + 1 : 0;
            if ((i & 1) == 1) wide = IsText(bytes[i - 1]) && b == 0 ? wide + 1 : 0;
            if (text >= TextRun || zeros >= ZeroRun || wide >= WideRun) return true;
        }
        return false;
    }

    private static bool IsText(byte c) => c is >= 0x20 and < 0x7f;

    /// <summary>
    /// Whether the <paramref name="width"/>-bit mask (bit 0 first) holds <paramref name="length"/> set bits in a row,
    /// counting the <paramref name="carry"/> set bits that ended the previous mask; updates the carry.
    /// </summary>
    private static bool Run(ulong mask, int width, int length, ref int carry)
    {
        var full = width == 64 ? ulong.MaxValue : (1UL << width) - 1;
        var leading = mask == full ? width : BitOperations.TrailingZeroCount(~mask);
        if (carry + leading >= length) return true;
        // length consecutive bits inside the mask: the and of the mask shifted by 0 .. length - 1.
        var m = mask;
        for (var k = 1; k < length; k++) m &= mask >> k;
        if (m != 0) return true;
        carry = mask == full ? carry + width : BitOperations.LeadingZeroCount(~mask << (64 - width));
        return false;
    }

    /// <summary>Bits 1, 3, 5, … of <paramref name="x"/> packed into bits 0 .. 31.</summary>
    private static ulong OddBits(ulong x)
    {
        x = (x >> 1) & 0x5555555555555555UL;
        x = (x | (x >> 1)) & 0x3333333333333333UL;
        x = (x | (x >> 2)) & 0x0F0F0F0F0F0F0F0FUL;
        x = (x | (x >> 4)) & 0x00FF00FF00FF00FFUL;
        x = (x | (x >> 8)) & 0x0000FFFF0000FFFFUL;
        return (x | (x >> 16)) & 0x00000000FFFFFFFFUL;
    }
}
