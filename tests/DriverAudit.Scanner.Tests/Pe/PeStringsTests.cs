using System.Text;
using DriverAudit.Rules.Facts;
using DriverAudit.Scanner.Pe;
using Xunit;

namespace DriverAudit.Scanner.Tests.Pe;

/// <summary>
/// The vectorised string scan against a plain byte-by-byte reference: same strings, same RVAs, on buffers
/// built to put runs across the 64-unit block edges, at both UTF-16 alignments and at the buffer's end.
/// </summary>
public class PeStringsTests
{
    private static readonly PeSection Data = new(0, ".rdata", 0x3000, 0x10000, 0x400, 0x10000, PeSection.MemRead);

    private static bool Printable(int c) => c is >= 0x20 and < 0x7f or '\t';

    // The reference: one byte (or byte pair) at a time.
    private static List<StringFact> Reference(byte[] bytes, int min)
    {
        var into = new List<StringFact>();
        var start = -1;
        for (var i = 0; i <= bytes.Length; i++)
        {
            if (i < bytes.Length && Printable(bytes[i])) { if (start < 0) start = i; continue; }
            if (start >= 0 && i - start >= min)
                into.Add(new StringFact(Encoding.ASCII.GetString(bytes, start, Math.Min(i - start, PeStrings.MaxStringLength)), false, Data.Rva + (uint)start, Data.Name));
            start = -1;
        }
        for (var phase = 0; phase < 2; phase++)
        {
            start = -1;
            for (var i = phase; i <= bytes.Length; i += 2)
            {
                if (i + 1 < bytes.Length && bytes[i + 1] == 0 && Printable(bytes[i])) { if (start < 0) start = i; continue; }
                if (start >= 0 && (i - start) / 2 >= min)
                    into.Add(new StringFact(Encoding.Unicode.GetString(bytes, start, Math.Min((i - start) / 2, PeStrings.MaxStringLength) * 2), true, Data.Rva + (uint)start, Data.Name));
                start = -1;
            }
        }
        return into;
    }

    private static List<StringFact> Vectorised(byte[] bytes, int min)
    {
        var into = new List<StringFact>();
        PeStrings.Ascii(bytes, Data, min, into);
        PeStrings.Utf16(bytes, Data, min, into);
        return into;
    }

    private static byte[] Mixed(int seed, int length)
    {
        var random = new Random(seed);
        var bytes = new byte[length];
        var i = 0;
        while (i < length)
        {
            var run = random.Next(1, random.Next(2) == 0 ? 12 : 150);
            switch (random.Next(5))
            {
                case 0: // ASCII text
                    for (var k = 0; k < run && i < length; k++) bytes[i++] = (byte)random.Next(0x20, 0x7f);
                    break;
                case 1: // UTF-16 text, either alignment
                    for (var k = 0; k < run && i + 1 < length; k++) { bytes[i++] = (byte)(random.Next(8) == 0 ? '\t' : random.Next(0x20, 0x7f)); bytes[i++] = 0; }
                    break;
                case 2: // zeros
                    i += run;
                    break;
                default: // code-like noise
                    for (var k = 0; k < run && i < length; k++) bytes[i++] = (byte)random.Next(256);
                    break;
            }
        }
        return bytes;
    }

    [Theory]
    [InlineData(4)]
    [InlineData(6)]
    public void Vectorised_scan_finds_what_a_byte_by_byte_scan_finds(int min)
    {
        for (var seed = 0; seed < 200; seed++)
        {
            var bytes = Mixed(seed, 1 + (seed * 37 % 1500));
            Assert.Equal(Reference(bytes, min), Vectorised(bytes, min));
        }
    }

    [Fact]
    public void Runs_at_block_edges_at_the_end_and_longer_than_the_cap()
    {
        foreach (var length in new[] { 63, 64, 65, 127, 128, 129, 200, 9000 })
        {
            foreach (var fill in new byte[] { (byte)'A', 0 })
            {
                var all = Enumerable.Repeat((byte)'A', length).ToArray();
                Assert.Equal(Reference(all, 4), Vectorised(all, 4));
                // A run ending exactly at the end of a block, then one starting on the next block.
                var edge = new byte[length];
                for (var i = 0; i < length; i++) edge[i] = i % 64 is >= 58 or < 3 ? (byte)'x' : fill;
                Assert.Equal(Reference(edge, 4), Vectorised(edge, 4));
            }
        }
        var wide = Encoding.Unicode.GetBytes(new string('W', 5000));
        var found = Vectorised(wide, 4);
        Assert.Equal(PeStrings.MaxStringLength, Assert.Single(found, s => s.Utf16).Value.Length);
    }

    [Fact]
    public void A_utf16_string_that_ends_the_section_is_found()
    {
        // "\Device\X" with no terminator in the section's last bytes, at both alignments.
        foreach (var pad in new[] { 2, 3 })
        {
            var bytes = new byte[pad].Concat(Encoding.Unicode.GetBytes(@"\Device\X")).ToArray();
            var s = Assert.Single(Vectorised(bytes, 4), s => s.Utf16);
            Assert.Equal((@"\Device\X", Data.Rva + (uint)pad), (s.Value, s.Rva));
        }
    }
}
