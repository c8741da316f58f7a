using System.Text;
using DriverAudit.Rules.Facts;
using DriverAudit.Scanner.Images;
using DriverAudit.Scanner.Pe;
using DriverAudit.Scanner.Tests.Images;
using DriverAudit.TestSupport;
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

    /// <summary>Reads <paramref name="bytes"/> as a span, recording each read (offset, length).</summary>
    private static PeStrings.SpanReader Reader(byte[] bytes, List<(int Offset, int Length)>? reads = null) => (offset, into) =>
    {
        var n = Math.Clamp(bytes.Length - offset, 0, into.Length);
        bytes.AsSpan(offset, n).CopyTo(into);
        reads?.Add((offset, n));
        return n;
    };

    private static PeStrings.NeedleHits[] Search(byte[] bytes, int min, IEnumerable<StringNeedle> needles, int chunk = PeStrings.SearchChunk, List<(int, int)>? reads = null)
    {
        var hits = needles.Select(n => new PeStrings.NeedleHits(n)).ToArray();
        PeStrings.SearchSpan(bytes.Length, Reader(bytes, reads), Data, min, hits, chunk);
        return hits;
    }

    private static bool ByNeedle(byte[] bytes, int min, StringNeedle needle, Func<StringFact, bool> match, int chunk = PeStrings.SearchChunk) =>
        Search(bytes, min, [needle], chunk)[0].MayHave(match);

    /// <summary>The reference's strings that hold the needle (in an encoding it asks for, at the start when it asks).</summary>
    private static List<StringFact> Holding(List<StringFact> strings, StringNeedle needle)
    {
        var comparison = needle.IgnoreCase ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;
        return [.. strings.Where(s => (s.Utf16 ? needle.Utf16 : needle.Ascii)
            && (needle.AtStart ? s.Value.StartsWith(needle.Text, comparison) : s.Value.Contains(needle.Text, comparison)))
            .OrderBy(s => s.Rva).ThenBy(s => s.Utf16)];
    }

    private static List<StringFact> Found(PeStrings.NeedleHits hits)
    {
        Assert.False(hits.Unknown);
        return [.. hits.Strings.Distinct().OrderBy(s => s.Rva).ThenBy(s => s.Utf16)];
    }

    private static Func<StringFact, bool> Containing(string text, bool ignoreCase, bool atStart)
    {
        var comparison = ignoreCase ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;
        return s => atStart ? s.Value.StartsWith(text, comparison) : s.Value.Contains(text, comparison);
    }

    [Fact]
    public void The_needle_search_answers_as_the_extracted_strings_would()
    {
        var random = new Random(11);
        for (var seed = 0; seed < 300; seed++)
        {
            var bytes = Mixed(seed, 1 + (seed * 37 % 1500));
            var min = seed % 2 == 0 ? 4 : 6;
            var strings = Reference(bytes, min);
            for (var k = 0; k < 6; k++)
            {
                // Needles taken from a string (its start or inside it, some with the case flipped) or absent.
                var text = "Zq" + (char)random.Next(0x20, 0x7f);
                if (strings.Count > 0 && k < 4)
                {
                    var s = strings[random.Next(strings.Count)].Value;
                    var at = k % 2 == 0 ? 0 : random.Next(s.Length);
                    text = s.Substring(at, random.Next(1, Math.Min(8, s.Length - at) + 1));
                }
                if (k == 3) text = text.ToUpperInvariant();
                foreach (var (ignoreCase, atStart) in new[] { (false, false), (true, false), (false, true), (true, true) })
                {
                    var match = Containing(text, ignoreCase, atStart);
                    var needle = new StringNeedle(text, ignoreCase, atStart, Ascii: true, Utf16: true);
                    Assert.True(strings.Any(match) == ByNeedle(bytes, min, needle, match), $"seed {seed} needle {needle}");
                }
            }
        }
    }

    [Fact]
    public void The_needle_search_keeps_the_length_cap_the_minimum_and_the_end_of_the_section()
    {
        var needle = new StringNeedle("Needle", false, false, true, true);
        // Past the first MaxStringLength characters of a run the text is not in any string.
        var late = Encoding.ASCII.GetBytes(new string('a', PeStrings.MaxStringLength) + "Needle");
        Assert.False(ByNeedle(late, 4, needle, Containing("Needle", false, false)));
        var early = Encoding.Unicode.GetBytes(new string('a', PeStrings.MaxStringLength - 6) + "Needle" + "bbbb");
        Assert.True(ByNeedle(early, 4, needle, Containing("Needle", false, false)));
        // Shorter than the section's minimum: not a string.
        var shortRun = Encoding.ASCII.GetBytes("\0D:P\0");
        Assert.False(ByNeedle(shortRun, 6, new StringNeedle("D:P", false, true, true, true), Containing("D:P", false, true)));
        Assert.True(ByNeedle(shortRun, 3, new StringNeedle("D:P", false, true, true, true), Containing("D:P", false, true)));
        // A UTF-16 string at an odd offset that ends the section, and only in the encoding asked for.
        var odd = new byte[] { 7 }.Concat(Encoding.Unicode.GetBytes("D:P(A;;GA;;;WD)")).ToArray();
        Assert.True(ByNeedle(odd, 4, new StringNeedle("D:", false, true, false, true), Containing("D:", false, true)));
        Assert.False(ByNeedle(odd, 4, new StringNeedle("D:", false, true, true, false), Containing("D:", false, true)));
    }

    [Fact]
    public void Read_a_chunk_at_a_time_the_needle_search_still_answers_as_the_extracted_strings_would()
    {
        // Spans much longer than the chunk, with runs longer than the string cap that hold the needle before, across
        // and after the cap and across chunk edges, at both UTF-16 alignments.
        var random = new Random(5);
        for (var seed = 0; seed < 40; seed++)
        {
            var bytes = Mixed(seed, 30_000 + seed * 997);
            for (var k = 0; k < 6; k++)
            {
                var runLength = random.Next(3000, 9000);
                var run = new char[runLength];
                for (var c = 0; c < runLength; c++) run[c] = (char)random.Next('a', 'z' + 1);
                var needleAt = random.Next(runLength - 8);
                "Needle".CopyTo(0, run, needleAt, 6);
                var encoded = k % 2 == 0 ? Encoding.ASCII.GetBytes(run) : Encoding.Unicode.GetBytes(run);
                var at = Math.Min(bytes.Length - encoded.Length - 1, random.Next(bytes.Length));
                if (at < 1) continue;
                bytes[at - 1] = 0xff;
                encoded.CopyTo(bytes, at);
                bytes[at + encoded.Length] = 0xff;
            }
            var strings = Reference(bytes, 4);
            foreach (var (text, ignoreCase, atStart) in new[] { ("Needle", false, false), ("needle", true, false), ("Needle", false, true), ("qq", false, false) })
            {
                var match = Containing(text, ignoreCase, atStart);
                var needle = new StringNeedle(text, ignoreCase, atStart, Ascii: true, Utf16: true);
                var expected = strings.Any(match);
                foreach (var chunk in new[] { 1000, 4097, 8192, 1 << 20 })
                    Assert.True(expected == ByNeedle(bytes, 4, needle, match, chunk), $"seed {seed} needle {needle} chunk {chunk}");
            }
        }
    }

    [Fact]
    public void Many_needles_searched_together_find_each_one_the_strings_that_hold_it()
    {
        // Random buffers with SDDL-like text planted, searched for overlapping needles at once ("D:" and longer ones
        // starting with it, one ignoring case, one only at a string's start, one per encoding), in chunks that put
        // occurrences across chunk edges: each needle's strings are exactly the reference's strings that hold it.
        var random = new Random(23);
        string[] planted = ["D:P(A;;GA;;;WD)", "d:p(a;;ga;;;wd)", "xD:P(A;", "D:", "\\Device\\PhysicalMemory", "\\DEVICE\\physicalmemory", "D:PAI(A;"];
        StringNeedle[] needles =
        [
            new("D:", false, true, true, true),
            new("D:", false, false, true, true),
            new("D:P(A;", false, true, true, true),
            new("d:p(a;", true, false, true, true),
            new("D:P(A;", false, false, false, true),
            new("D:P(A;", false, false, true, false),
            new(@"\Device\PhysicalMemory", true, false, true, true),
            new("A", false, false, true, true),
            new("\t", false, false, true, true),
        ];
        for (var seed = 0; seed < 120; seed++)
        {
            var bytes = Mixed(seed, 2_000 + seed * 61);
            for (var k = 0; k < 12; k++)
            {
                var text = planted[random.Next(planted.Length)];
                var encoded = random.Next(2) == 0 ? Encoding.ASCII.GetBytes(text) : Encoding.Unicode.GetBytes(text);
                var at = random.Next(bytes.Length - encoded.Length);
                encoded.CopyTo(bytes, at);
            }
            var min = seed % 3 == 0 ? 6 : 4;
            var strings = Reference(bytes, min);
            foreach (var chunk in new[] { 97, 1000, 4097, PeStrings.SearchChunk })
            {
                var hits = Search(bytes, min, needles, chunk);
                for (var n = 0; n < needles.Length; n++)
                {
                    var expected = Holding(strings, needles[n]);
                    if (expected.Count > PeStrings.NeedleHits.MaxKept) { Assert.True(hits[n].Unknown); continue; }
                    Assert.True(expected.SequenceEqual(Found(hits[n])), $"seed {seed} chunk {chunk} needle {needles[n]}");
                }
            }
        }
    }

    [Fact]
    public void Occurrences_across_every_chunk_edge_are_found_once_each_byte_read_once()
    {
        const int chunk = 1000;
        foreach (var utf16 in new[] { false, true })
        {
            for (var shift = -20; shift <= 3; shift++)
            {
                var bytes = new byte[20_000];
                var expected = new List<uint>();
                for (var edge = chunk; edge + 40 < bytes.Length; edge += chunk)
                {
                    var text = "D:P(A;;GA;;;WD)";
                    var encoded = utf16 ? Encoding.Unicode.GetBytes(text) : Encoding.ASCII.GetBytes(text);
                    var at = edge + shift + (utf16 && (edge / chunk) % 2 == 1 ? 1 : 0); // both UTF-16 alignments
                    encoded.CopyTo(bytes, at);
                    expected.Add(Data.Rva + (uint)at);
                }
                var reads = new List<(int Offset, int Length)>();
                var hits = Search(bytes, 4, [new("D:", false, true, true, true), new("(A;;GA;;;WD)", false, false, true, true)], chunk, reads);
                foreach (var h in hits)
                    Assert.Equal(expected, Found(h).Select(s => s.Rva));
                // The window carries the margins over: the reads tile the span, each byte once.
                var next = 0;
                foreach (var (offset, length) in reads)
                {
                    Assert.Equal(next, offset);
                    next += length;
                }
                Assert.Equal(bytes.Length, next);
            }
        }
    }

    [Fact]
    public void Past_the_strings_kept_per_needle_the_search_rules_nothing_out()
    {
        var text = string.Concat(Enumerable.Range(0, PeStrings.NeedleHits.MaxKept + 1).Select(i => $"D:{i:0000}\0"));
        var hits = Search(Encoding.ASCII.GetBytes(text), 4, [new("D:", false, true, true, true), new("D:0001", false, true, true, true)]);
        Assert.True(hits[0].Unknown);
        Assert.True(hits[0].MayHave(_ => false));
        Assert.Equal(["D:0001"], Found(hits[1]).Select(s => s.Value));
        Assert.False(hits[1].MayHave(s => s.Value == "D:0002"));
    }

    [Fact]
    public void The_facts_read_the_image_once_for_every_needle_asked_along()
    {
        // Sections well past the image's small-read cache, with the strings asked about planted in them.
        var data = Mixed(3, 64 * 1024);
        Encoding.ASCII.GetBytes("\0D:P(A;;GA;;;WD)\0").CopyTo(data, 20_000);
        Encoding.Unicode.GetBytes("\0\\Device\\PhysicalMemory\0").CopyTo(data, 40_001);
        var bytes = new PeBuilder().AddSection(".rdata", PeBuilder.RDataCharacteristics, data).AddSection(".data", PeBuilder.DataCharacteristics, Mixed(4, 32 * 1024)).Build().File;
        var source = new CountingSource(bytes);
        var image = PeImage.TryOpen(source).Image!;
        var facts = new PeFacts(image);
        var strings = PeStrings.Extract(PeImage.TryOpen(new MemoryImageSource(bytes, ImageLayout.File, new ImageOrigin("x"))).Image!);
        StringNeedle sddl = new("D:", false, true, true, true), physical = new(@"\device\physicalmemory", true, false, true, true), absent = new("NoSuchText", false, false, true, true);
        var before = source.BytesRead;
        var isSddl = Containing("D:P(A;", false, true);
        Assert.Equal(strings.Any(isSddl), facts.MayHaveString(sddl, isSddl, [sddl, physical, absent]));
        var once = source.BytesRead - before;
        Assert.True(once >= data.Length);
        var named = Containing(@"\device\physicalmemory", true, false);
        Assert.True(strings.Any(isSddl) && strings.Any(named)); // the planted strings, found by the search below
        Assert.True(facts.MayHaveString(physical, named, [sddl, physical]));
        Assert.False(facts.MayHaveString(absent, _ => true, []));
        Assert.False(facts.MayHaveString(sddl, _ => false, [sddl]));
        Assert.Equal(once, source.BytesRead - before); // every needle answered from the one search
        // A needle not asked along before is searched on its own.
        var late = new StringNeedle("GA;;;", false, false, true, true);
        Assert.True(facts.MayHaveString(late, Containing("GA;;;WD", false, false), [sddl]));
        Assert.Equal(2 * once, source.BytesRead - before);
    }

    [Theory]
    [InlineData("x64/primitives.sys")]
    [InlineData("x86/primitives.sys")]
    [InlineData("x64/strings_in_code.sys")]
    [InlineData("x64/wdmsec_table.sys")]
    [InlineData("x64/pool_modern.sys")]
    public void On_a_driver_the_needle_search_agrees_with_the_extraction(string binary)
    {
        using var source = FileImageSource.Open(Path.Combine(RepoPaths.FixtureBin, binary));
        var image = PeImage.TryOpen(source).Image!;
        var strings = PeStrings.Extract(image);
        foreach (var (text, ignoreCase, atStart) in new[] { (@"\device\physicalmemory", true, false), ("D:", false, true), ("D:P(A;", false, true), ("(A;;GA;;;WD)", false, false), ("NoSuchText", false, false), ("ntoskrnl", true, false) })
        {
            var match = Containing(text, ignoreCase, atStart);
            Assert.Equal(strings.Any(match), PeStrings.MayHave(image, new StringNeedle(text, ignoreCase, atStart, true, true), match));
        }
    }
}
