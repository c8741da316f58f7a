using System.Buffers.Binary;
using DriverAudit.Scanner.Code;
using DriverAudit.Scanner.Images;
using DriverAudit.Scanner.Pe;
using DriverAudit.TestSupport;
using Xunit;

namespace DriverAudit.Scanner.Tests.Code;

/// <summary>
/// The /GS default-cookie evidence answered from the code's references once they are known (reading only the windows
/// that hold a referenced aligned word) gives the answer of the search through every data byte it replaces.
/// </summary>
public class StackCookieReadsTests
{
    private const ulong Base = 0x400000;

    [Theory]
    [MemberData(nameof(CodeReadsTests.AllFixtures), MemberType = typeof(CodeReadsTests))]
    public void On_every_fixture_the_referenced_words_answer_like_the_whole_section_search(string binary)
    {
        using var source = FileImageSource.Open(Path.Combine(RepoPaths.Fixtures, "bin", binary));
        if (PeImage.TryOpen(source).Image is not { } image) return; // the deliberately broken inputs
        var sites = CodeReadsTests.CookieSitesWholeSections(image);
        var step = image.Is64Bit ? 8u : 4u;
        var random = new Random(5003);
        var sets = new List<HashSet<uint>> { new(sites), new(sites.Select(s => s + step / 2)), new(sites.Select(s => s + 1)) };
        sets.AddRange(sites.Select(s => new HashSet<uint> { s }));
        for (var k = 0; k < 20; k++)
            sets.Add([.. Enumerable.Range(0, 200).Select(_ => (uint)random.NextInt64(image.SizeOfImage) & ~(step - 1))]);
        var built = new CodeFacts(image);
        if (built.NotEvaluatedReason is null && built.Supported) sets.Add([.. built.References]);
        foreach (var set in sets)
            Assert.Equal(sites.Any(set.Contains), StackCookie.ReadsDefaultCookie(image, set));

        // Through the characteristic: the search (map not built) and the references (map built first) agree.
        var before = StackCookie.FromCode(image, new CodeFacts(image));
        _ = built.References;
        Assert.Equal(before, StackCookie.FromCode(image, built));
        if (binary.EndsWith("gs_cookie.sys", StringComparison.Ordinal))
        {
            Assert.NotNull(built.ReferencesIfAnalysed); // the references answered
            Assert.True(before);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Referenced_aligned_cookies_count_unreferenced_and_misaligned_ones_do_not(bool is64)
    {
        // 64 KB of data: cookies at window edges (16 KB), misaligned, and at the last aligned word.
        var data = new byte[64 << 10];
        int[] at = [0, 8, (16 << 10) - 8, 16 << 10, (40 << 10) + 4, 1001, data.Length - 8];
        foreach (var a in at) WriteCookie(data, a, is64);
        var image = Open(MiniPe.Build(is64, Base, 0, 0,
            [new MiniSection(".text", 0x1000, [0xC3], MiniSection.Code), new MiniSection(".data", 0x2000, data, MiniSection.WritableData)]));
        var sites = CodeReadsTests.CookieSitesWholeSections(image);
        Assert.Equal(is64 ? 5 : 6, sites.Count); // the oracle itself: 1001 is never aligned, 40 KB + 4 only on x86

        Assert.True(StackCookie.ReadsDefaultCookie(image, new HashSet<uint> { 0x2000 + (16u << 10) }));
        Assert.True(StackCookie.ReadsDefaultCookie(image, new HashSet<uint> { 0x2000 + (uint)data.Length - 8 }));
        Assert.Equal(!is64, StackCookie.ReadsDefaultCookie(image, new HashSet<uint> { 0x2000 + (40u << 10) + 4 }));
        Assert.False(StackCookie.ReadsDefaultCookie(image, new HashSet<uint> { 0x2000 + 1001 })); // referenced, misaligned
        Assert.False(StackCookie.ReadsDefaultCookie(image, new HashSet<uint> { 0x2000 + 16, 0x2000 + (32u << 10), 0x1000 })); // no cookie there
        Assert.False(StackCookie.ReadsDefaultCookie(image, new HashSet<uint>()));
        // Every single word, referenced alone (the bitmap the code map builds, too).
        for (uint rva = 0x1FF0; rva < 0x2000 + data.Length + 16; rva++)
        {
            var set = new RvaSet(image.SizeOfImage);
            set.Add(rva);
            Assert.Equal(sites.Contains(rva), StackCookie.ReadsDefaultCookie(image, set));
        }
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    public void The_budget_and_the_section_order_limit_the_referenced_words_as_they_limit_the_search(bool is64, bool bigSecond)
    {
        // 16 MB minus 4 KB of data, then a section with cookies at 0 and 8 KB: the search budget leaves 4 KB of the
        // second section when the big one comes first in the table, all of it when it comes second.
        var big = new MiniSection(".big", 0x2000, new byte[(16 << 20) - 0x1000], MiniSection.ReadOnlyData);
        var data = new byte[64 << 10];
        WriteCookie(data, 0, is64);
        WriteCookie(data, 0x2000, is64);
        var small = new MiniSection(".data", 0x2000 + (16 << 20), data, MiniSection.WritableData);
        var text = new MiniSection(".text", 0x1000, [0xC3], MiniSection.Code);
        var image = Open(MiniPe.Build(is64, Base, 0, 0, bigSecond ? [text, small, big] : [text, big, small]));
        var sites = CodeReadsTests.CookieSitesWholeSections(image);
        Assert.Equal(bigSecond ? 2 : 1, sites.Count);
        Assert.True(StackCookie.ReadsDefaultCookie(image, new HashSet<uint> { small.Rva }));
        Assert.Equal(bigSecond, StackCookie.ReadsDefaultCookie(image, new HashSet<uint> { small.Rva + 0x2000 }));
    }

    [Theory]
    [InlineData(false, (20 << 10) + 3)]
    [InlineData(true, (20 << 10) + 3)]
    [InlineData(false, 16 << 10)]
    [InlineData(true, (40 << 10) + 6)]
    public void A_truncated_file_ends_the_referenced_words_where_it_ends_the_search(bool is64, int keep)
    {
        var data = new byte[64 << 10];
        foreach (var a in (int[])[0, (16 << 10) - 8, 16 << 10, 20 << 10, 40 << 10]) WriteCookie(data, a, is64);
        var file = MiniPe.Build(is64, Base, 0, 0,
            [new MiniSection(".text", 0x1000, [0xC3], MiniSection.Code), new MiniSection(".data", 0x2000, data, MiniSection.WritableData)]);
        var image = Open(file[..(file.Length - data.Length + keep)]); // .data is the last raw data
        var sites = CodeReadsTests.CookieSitesWholeSections(image);
        Assert.Equal(keep >= (20 << 10) + (is64 ? 8 : 4), sites.Contains(0x2000u + (20u << 10))); // the oracle sees the end
        Assert.True(StackCookie.ReadsDefaultCookie(image, new HashSet<uint> { 0x2000 }));
        // The cookie at 40 KB lies beyond the end (on x64 with 40 KB + 6 kept, only 6 of its 8 bytes remain).
        Assert.DoesNotContain(0x2000u + (40u << 10), sites);
        Assert.False(StackCookie.ReadsDefaultCookie(image, new HashSet<uint> { 0x2000u + (40u << 10) }));
        for (uint rva = 0x2000; rva < 0x2000 + data.Length; rva += 4)
        {
            Assert.Equal(sites.Contains(rva), StackCookie.ReadsDefaultCookie(image, new HashSet<uint> { rva }));
            // With the cookie beyond the end referenced as well: it never counts.
            Assert.Equal(sites.Contains(rva), StackCookie.ReadsDefaultCookie(image, new HashSet<uint> { rva, 0x2000u + (40u << 10) }));
        }
    }

    [Theory]
    [InlineData(false, true)]
    [InlineData(true, true)]
    [InlineData(false, false)]
    [InlineData(true, false)]
    public void Code_reading_the_cookie_is_found_from_the_references_reading_only_its_window(bool is64, bool reads)
    {
        // .text reads the cookie variable (or a word beside it); 4 MB of unreferenced data (resources, debug info) follow.
        var data = new byte[0x1000];
        WriteCookie(data, 0x10, is64);
        var target = reads ? 0x2010u : 0x2018u;
        var source = Source(MiniPe.Builder(is64, Base, 0, 0,
            new MiniSection(".text", 0x1000, ReadCode(is64, target), MiniSection.Code),
            new MiniSection(".data", 0x2000, data, MiniSection.WritableData),
            new MiniSection(".rsrc", 0x3000, MiniPe.Pattern(4 << 20, 1), MiniSection.ReadOnlyData)));
        var image = PeImage.TryOpen(source).Image!;
        var code = new CodeFacts(image);
        Assert.Null(code.NotEvaluatedReason);
        Assert.Contains(target, code.References);

        source.BytesRead = 0;
        Assert.Equal(reads, StackCookie.FromCode(image, code));
        Assert.InRange(source.BytesRead, 1, 64 << 10); // one window, not the 4 MB
        // The search it stands for reads every data byte, and agrees.
        source.BytesRead = 0;
        Assert.Equal(reads, StackCookie.FromCode(image, new CodeFacts(image)));
        Assert.True(source.BytesRead >= 4 << 20);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_cookie_reached_through_a_counted_string_descriptor_counts_as_the_search_counts_it(bool is64)
    {
        // Code takes the address of a UNICODE_STRING-shaped descriptor whose Buffer is the cookie variable.
        var data = new byte[0x1000];
        WriteCookie(data, 0x40, is64);
        BinaryPrimitives.WriteUInt16LittleEndian(data, 8); // Length
        BinaryPrimitives.WriteUInt16LittleEndian(data.AsSpan(2), 8); // MaximumLength
        if (is64) BinaryPrimitives.WriteUInt64LittleEndian(data.AsSpan(8), Base + 0x2040);
        else BinaryPrimitives.WriteUInt32LittleEndian(data.AsSpan(4), (uint)Base + 0x2040);
        var source = Source(MiniPe.Builder(is64, Base, 0, 0,
            new MiniSection(".text", 0x1000, ReadCode(is64, 0x2000), MiniSection.Code),
            new MiniSection(".data", 0x2000, data, MiniSection.WritableData)));
        var image = PeImage.TryOpen(source).Image!;
        var built = new CodeFacts(image);
        Assert.DoesNotContain(0x2040u, built.References);
        Assert.Contains(0x2040u, built.ReferencedViaDescriptor());
        Assert.True(StackCookie.FromCode(image, new CodeFacts(image)));
        Assert.True(StackCookie.FromCode(image, built));
    }

    [Fact]
    public void Overlapping_sections_keep_the_search()
    {
        // An executable section listed first overlaps .data's second window: a read starting there copies its bytes (a
        // cookie), the search's read of .data from its start copies .data's (none). The search's answer stands.
        var data = new byte[0x8000];
        var hidden = new byte[0x1000];
        WriteCookie(hidden, 0, false);
        var source = Source(MiniPe.Builder(false, Base, 0, 0,
            new MiniSection(".text", 0x1000, ReadCode(false, 0x6000), MiniSection.Code),
            new MiniSection(".over", 0x6000, hidden, MiniSection.Code),
            new MiniSection(".data", 0x2000, data, MiniSection.WritableData)));
        var image = PeImage.TryOpen(source).Image!;
        Assert.False(CodeImage.PositionIndependent(image));
        var built = new CodeFacts(image);
        Assert.Contains(0x6000u, built.References);
        Assert.Empty(StackCookie.DefaultCookieSites(image));
        Assert.False(StackCookie.FromCode(image, built));
        // What the references alone would say about these bytes: the overlap is why the search is kept.
        Assert.True(StackCookie.ReadsDefaultCookie(image, new HashSet<uint> { 0x6000 }));
    }

    [Theory]
    [MemberData(nameof(CodeReadsTests.AllFixtures), MemberType = typeof(CodeReadsTests))]
    public void Windowed_reads_return_what_reads_of_their_own_return_on_every_fixture(string binary)
    {
        using var source = FileImageSource.Open(Path.Combine(RepoPaths.Fixtures, "bin", binary));
        if (PeImage.TryOpen(source).Image is { } image) WindowedReadsAgree(image, seed: binary.Length);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(0x1234)]
    [InlineData(0x2000 + (40 << 10))]
    public void Windowed_reads_return_what_reads_of_their_own_return_at_gaps_tails_and_truncation(int cut)
    {
        // .data with a zero-filled tail (virtual size beyond the raw data), a gap, then .rdata; the file cut in .rdata.
        var builder = MiniPe.Builder(false, Base, 0, 0,
            new MiniSection(".text", 0x1000, MiniPe.Pattern(0x800, 1), MiniSection.Code),
            new MiniSection(".data", 0x2000, MiniPe.Pattern(0x1800, 2), MiniSection.WritableData),
            new MiniSection(".rdata", 0x8000, MiniPe.Pattern(64 << 10, 3), MiniSection.ReadOnlyData));
        builder.EntryPoint = 0x1000;
        var file = builder.Build().File;
        var image = Open(cut == 0 ? file : file[..(file.Length - (64 << 10) + cut)]);
        Assert.True(CodeImage.PositionIndependent(image));
        WindowedReadsAgree(image, seed: cut);
    }

    [Fact]
    public void Windowed_reads_return_what_reads_of_their_own_return_in_a_loaded_image_with_missing_pages()
    {
        // A dump module: loaded layout, pages missing in the middle of .rdata and at its end.
        var builder = MiniPe.Builder(false, Base, 0, 0,
            new MiniSection(".text", 0x1000, MiniPe.Pattern(0x800, 1), MiniSection.Code),
            new MiniSection(".rdata", 0x2000, MiniPe.Pattern(64 << 10, 3), MiniSection.ReadOnlyData));
        builder.EntryPoint = 0x1000;
        var loaded = PeLayout.ToLoaded(builder.Build().File);
        var missing = new bool[(loaded.Length + 0xFFF) / 0x1000];
        foreach (var page in (int[])[5, 6, 9, missing.Length - 1]) missing[page] = true;
        var image = PeImage.TryOpen(new MemoryImageSource(loaded, ImageLayout.Loaded, new ImageOrigin("dump.sys"), missing)).Image!;
        WindowedReadsAgree(image, seed: 9);
    }

    private static void WindowedReadsAgree(PeImage image, int seed)
    {
        var random = new Random(seed);
        using var window = new WindowedReader(image);
        var expected = new byte[17 << 10];
        var actual = new byte[17 << 10];
        var rva = 0u;
        for (var k = 0; k < 3000; k++)
        {
            // Mostly ascending small steps (references), sometimes a jump back or far ahead, sometimes a long read.
            var move = random.Next(10);
            rva = move == 0 ? (uint)random.NextInt64(image.SizeOfImage + 0x3000L) : move == 1 ? rva + (uint)random.Next(0x1000, 0x8000) : rva + (uint)random.Next(0, 64);
            var length = random.Next(20) == 0 ? random.Next(1, expected.Length) : random.Next(1, 17);
            Array.Clear(expected);
            Array.Clear(actual);
            var n = image.ReadRva(rva, expected.AsSpan(0, length));
            Assert.Equal(n, window.Read(rva, actual.AsSpan(0, length)));
            Assert.True(expected.AsSpan(0, n).SequenceEqual(actual.AsSpan(0, n)), $"rva 0x{rva:x} length {length}");
        }
    }

    [Fact]
    public void The_range_enumeration_of_the_rva_bitmap_visits_the_members_of_the_range_in_order()
    {
        var random = new Random(64);
        const uint limit = 0x345678;
        var set = new RvaSet(limit);
        var expected = new SortedSet<uint>();
        for (var k = 0; k < 3000; k++)
        {
            var v = k % 3 == 0 ? (uint)random.NextInt64(limit) : (uint)(k % 40) * 0x10000 + (uint)random.Next(0, k % 3 == 1 ? 130 : 0x20000);
            if (v < limit && set.Add(v)) expected.Add(v);
        }
        foreach (var (from, to) in (IEnumerable<(uint, ulong)>)[(0, limit), (0, 0), (5, 5), (64, 128), (0xFFFF, 0x10001), (0x20000, 0x30000), (limit - 1, uint.MaxValue + 1UL), (limit + 10, limit + 100)])
            Assert.Equal(expected.Where(v => v >= from && v < to), Members(set.InRange(from, to)));
        Assert.Equal(expected, Members(set.All()));
        for (var k = 0; k < 500; k++)
        {
            var from = (uint)random.NextInt64(limit + 0x1000);
            var to = from + (ulong)random.NextInt64(0x40000);
            Assert.Equal(expected.Where(v => v >= from && v < to), Members(set.InRange(from, to)));
            foreach (var step in (int[])[2, 4, 8]) // only members a multiple of step from `from`, whatever from's phase
                Assert.Equal(expected.Where(v => v >= from && v < to && (v - from) % step == 0), Members(set.InRange(from, to, step)));
        }

        static List<uint> Members(RvaSet.RangeEnumerator range)
        {
            var list = new List<uint>();
            foreach (var v in range) list.Add(v);
            return list;
        }
    }

    private static void WriteCookie(byte[] data, int at, bool is64)
    {
        if (is64) BinaryPrimitives.WriteUInt64LittleEndian(data.AsSpan(at), StackCookie.DefaultCookie64);
        else BinaryPrimitives.WriteUInt32LittleEndian(data.AsSpan(at), StackCookie.DefaultCookie32);
    }

    /// <summary>At the entry (0x1000): a load of the variable at <paramref name="rva"/>, then ret.</summary>
    private static byte[] ReadCode(bool is64, uint rva)
    {
        var code = new byte[8];
        if (is64)
        {
            code[0] = 0x48; code[1] = 0x8B; code[2] = 0x05; // mov rax, [rip + rel32]
            BinaryPrimitives.WriteInt32LittleEndian(code.AsSpan(3), (int)rva - (0x1000 + 7));
            code[7] = 0xC3;
        }
        else
        {
            code[0] = 0xA1; // mov eax, [abs32]
            BinaryPrimitives.WriteUInt32LittleEndian(code.AsSpan(1), (uint)Base + rva);
            code[5] = 0xC3;
        }
        return code;
    }

    private static PeImage Open(byte[] file) =>
        PeImage.TryOpen(new MemoryImageSource(file, ImageLayout.File, new ImageOrigin("cookie.sys"))).Image!;

    private static CountingSource Source(PeBuilder builder)
    {
        builder.EntryPoint = 0x1000;
        return new CountingSource(new MemoryImageSource(builder.Build().File, ImageLayout.File, new ImageOrigin("cookie.sys")));
    }

    private sealed class CountingSource(IImageSource inner) : IImageSource
    {
        public long BytesRead;
        public ImageLayout Layout => inner.Layout;
        public long Length => inner.Length;
        public ImageOrigin Origin => inner.Origin;
        public bool IsAvailable(long position, long length) => inner.IsAvailable(position, length);
        public void Dispose() => inner.Dispose();

        public int Read(long position, Span<byte> destination)
        {
            var n = inner.Read(position, destination);
            BytesRead += n;
            return n;
        }
    }
}
