using System.Buffers.Binary;
using DriverAudit.Scanner.Code;
using DriverAudit.Scanner.Images;
using DriverAudit.Scanner.Pe;
using DriverAudit.TestSupport;
using Xunit;

namespace DriverAudit.Scanner.Tests.Code;

/// <summary>
/// The cheaper ways the code map reads and records bytes give the answers of the straightforward ones they replaced:
/// one read per section or relocation page instead of one per page or site, a paged bitmap instead of a hash set,
/// and a 64-bytes-at-a-time search for text and zero runs instead of a byte loop.
/// </summary>
public class CodeReadsTests
{
    public static TheoryData<string> AllFixtures()
    {
        var data = new TheoryData<string>();
        foreach (var dir in (string[])["x64", "x86", "arm64"])
            foreach (var path in Directory.EnumerateFiles(Path.Combine(RepoPaths.Fixtures, "bin", dir)).Order(StringComparer.Ordinal))
                data.Add(dir + "/" + Path.GetFileName(path));
        return data;
    }

    [Theory]
    [MemberData(nameof(AllFixtures))]
    public void Code_bytes_and_relocated_pointers_are_those_read_page_by_page_and_site_by_site(string binary)
    {
        using var source = FileImageSource.Open(Path.Combine(RepoPaths.Fixtures, "bin", binary));
        if (PeImage.TryOpen(source).Image is not { } image) return; // the deliberately broken inputs
        Assert.True(CodeImage.PositionIndependent(image)); // no fixture has overlapping sections: the one-read paths run
        if (CodeImage.Load(image) is { } code)
        {
            foreach (var section in code.Sections)
                Assert.Equal(PageByPage(image, section.Rva, section.Bytes.Length), section.Bytes);
            // The packed-code check measured on the code bytes already read, and reading the sections itself.
            Assert.Equal(PackedCode.Detect(image), PackedCode.Detect(image, code));
        }
        Assert.Equal(CookieSitesWholeSections(image), StackCookie.DefaultCookieSites(image));
        foreach (var highLow in (bool[])[true, false])
        {
            var pointers = new List<ulong>();
            BaseRelocations.ForEachPointer(image, highLow, pointers.Add);
            Assert.Equal(SiteBySite(image, highLow), pointers);
        }
    }

    [Fact]
    public void Overlapping_sections_are_read_page_by_page_with_the_first_sections_bytes()
    {
        // .data overlaps the second page of .text: a read starting in .text copies .text's bytes there, a read
        // starting at the page itself copies .data's. The code must be read as before: page by page.
        var text = new byte[0x2000];
        Array.Fill(text, (byte)0x90);
        var data = new byte[0x1000];
        Array.Fill(data, (byte)0xCC);
        var bytes = MiniPe.Build(false, 0x400000, 0, 0,
            [new MiniSection(".text", 0x1000, text, MiniSection.Code), new MiniSection(".data", 0x2000, data, MiniSection.WritableData)]);
        var image = PeImage.TryOpen(new MemoryImageSource(bytes, ImageLayout.File, new ImageOrigin("overlap.sys"))).Image!;
        Assert.False(CodeImage.PositionIndependent(image));
        var code = CodeImage.Load(image)!;
        var section = Assert.Single(code.Sections);
        Assert.Equal(PageByPage(image, section.Rva, section.Bytes.Length), section.Bytes);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Default_cookies_in_a_large_data_section_are_found_chunk_by_chunk_as_in_one_read(bool is64)
    {
        // 600 KB of data: the search reads it in 256 KB chunks; cookies at a chunk edge, after it, and misaligned.
        var data = new byte[600 << 10];
        var step = is64 ? 8 : 4;
        foreach (var at in (int[])[0, 8, (256 << 10) - 8, 256 << 10, (512 << 10) + 16, data.Length - 8, 1001])
        {
            if (is64) BinaryPrimitives.WriteUInt64LittleEndian(data.AsSpan(at), StackCookie.DefaultCookie64);
            else BinaryPrimitives.WriteUInt32LittleEndian(data.AsSpan(at), StackCookie.DefaultCookie32);
        }
        var bytes = MiniPe.Build(is64, 0x400000, 0, 0,
            [new MiniSection(".text", 0x1000, [0xC3], MiniSection.Code), new MiniSection(".data", 0x2000, data, MiniSection.WritableData)]);
        var image = PeImage.TryOpen(new MemoryImageSource(bytes, ImageLayout.File, new ImageOrigin("cookies.sys"))).Image!;
        var sites = StackCookie.DefaultCookieSites(image);
        Assert.Equal(CookieSitesWholeSections(image), sites);
        Assert.Equal(6, sites.Count); // every aligned one (offset 1001 is not)
        Assert.All(sites, s => Assert.Equal(0, (int)(s - 0x2000) % step));
    }

    [Fact]
    public void The_rva_bitmap_answers_like_a_hash_set()
    {
        var random = new Random(11);
        foreach (var limit in (uint[])[1, 100, 0x10000, 0x10001, 0x2345678])
        {
            var set = new RvaSet(limit);
            var expected = new HashSet<uint>();
            for (var k = 0; k < 5000; k++)
            {
                // Clustered and scattered values, page edges included.
                var v = k % 3 == 0 ? (uint)random.NextInt64(limit) : Math.Min(limit - 1, (uint)(k % 70) * 0x1000 + (uint)random.Next(-2, 3) & 0xFFFFFFF);
                if (v >= limit) continue;
                Assert.Equal(expected.Add(v), set.Add(v));
            }
            Assert.Equal(expected.Count, set.Count);
            Assert.Equal(expected.Order().ToList(), set.ToList()); // ascending
            for (var k = 0; k < 5000; k++)
            {
                var v = (uint)random.NextInt64(uint.MaxValue);
                Assert.Equal(expected.Contains(v), set.Contains(v));
            }
            Assert.True(set.SetEquals(expected));
            Assert.False(set.Contains(limit));
        }
    }

    [Fact]
    public void The_vectorised_data_run_search_agrees_with_the_byte_loop()
    {
        var random = new Random(3004);
        byte[] alphabet = [0, 0, 0x41, 0x7A, 0x20, 0x7E, 0x7F, 0x1F, 0x55, 0x8B, 0xFF, 0xE8];
        for (var trial = 0; trial < 20000; trial++)
        {
            var length = random.Next(0, 300);
            var bytes = new byte[length];
            // Runs of one kind at a time, so that runs of every length near the thresholds occur, across chunk edges.
            for (var at = 0; at < length;)
            {
                var run = random.Next(1, 12);
                var kind = random.Next(4);
                for (var k = 0; k < run && at < length; k++, at++)
                    bytes[at] = kind switch
                    {
                        0 => (byte)random.Next(0x20, 0x7F),
                        1 => 0,
                        2 => (at & 1) == 0 ? (byte)random.Next(0x20, 0x7F) : (byte)0,
                        _ => alphabet[random.Next(alphabet.Length)],
                    };
            }
            var offset = random.Next(0, 2); // the parity of the UTF-16 pairs follows the span's start
            var span = bytes.AsSpan(Math.Min(offset, length));
            Assert.Equal(DataRuns.AnyScalar(span), DataRuns.Any(span));
        }
    }

    [Fact]
    public void Data_runs_over_a_prefix_never_count_the_bytes_after_it()
    {
        var random = new Random(11);
        byte[] runs = [(byte)'a', 0];
        for (var round = 0; round < 20_000; round++)
        {
            var readable = new byte[random.Next(1, 300)];
            var length = random.Next(0, readable.Length + 1);
            for (var k = 0; k < length; k++)
                readable[k] = random.Next(3) switch { 0 => (byte)random.Next(0x20, 0x7F), 1 => 0, _ => (byte)random.Next(0x7F, 0x100) };
            // After the prefix: bytes that would extend or make a run of every kind, if they counted.
            var fill = random.Next(3);
            for (var k = length; k < readable.Length; k++)
                readable[k] = fill == 2 ? ((k & 1) == 0 ? (byte)'w' : (byte)0) : runs[fill];
            var prefix = readable.AsSpan(0, length);
            Assert.Equal(DataRuns.AnyScalar(prefix), DataRuns.Any(readable, length));
            Assert.Equal(DataRuns.AnyScalar(prefix), DataRuns.Any(prefix));
        }
    }

    [Theory]
    [InlineData(64, 0, 7, false)]
    [InlineData(72, 60, 8, true)] // a run of 8 across the first chunk's end
    [InlineData(128, 120, 7, false)]
    [InlineData(130, 122, 8, true)] // in the scalar tail, carried from the last chunk
    public void Text_runs_are_found_across_chunk_edges(int length, int start, int run, bool expected)
    {
        var bytes = new byte[length];
        Array.Fill(bytes, (byte)0x8B);
        for (var k = start; k < start + run; k++) bytes[k] = (byte)'a';
        Assert.Equal(expected, DataRuns.AnyScalar(bytes));
        Assert.Equal(expected, DataRuns.Any(bytes));
    }

    // The code reader as it was: every page read on its own, short reads leaving zeros.
    private static byte[] PageByPage(PeImage image, uint rva, int size)
    {
        var bytes = new byte[size];
        for (var at = 0; at < size;)
        {
            var n = Math.Min(0x1000 - (int)((rva + (uint)at) % 0x1000), size - at);
            image.ReadRva(rva + (uint)at, bytes.AsSpan(at, n));
            at += n;
        }
        return bytes;
    }

    // The default-cookie search as it was: each data section read whole.
    internal static List<uint> CookieSitesWholeSections(PeImage image)
    {
        var sites = new List<uint>();
        var step = image.Is64Bit ? 8 : 4;
        long budget = 16 << 20;
        foreach (var s in image.Sections)
        {
            if (s.Executable) continue;
            var size = (int)Math.Min(image.DataSize(s), budget);
            if (size < step) continue;
            budget -= size;
            var buffer = new byte[size];
            var n = image.ReadRva(s.Rva, buffer);
            for (var at = 0; at + step <= n; at += step)
            {
                var value = step == 8 ? BinaryPrimitives.ReadUInt64LittleEndian(buffer.AsSpan(at)) : BinaryPrimitives.ReadUInt32LittleEndian(buffer.AsSpan(at));
                if (value == (step == 8 ? StackCookie.DefaultCookie64 : StackCookie.DefaultCookie32)) sites.Add(s.Rva + (uint)at);
            }
        }
        return sites;
    }

    // The relocation walk as it was: one read per site.
    private static List<ulong> SiteBySite(PeImage image, bool includeHighLow)
    {
        var pointers = new List<ulong>();
        var dir = image.GetDirectory(5);
        if (!dir.IsPresent) return pointers;
        var table = new byte[(int)Math.Min(dir.Size, 4 << 20)];
        var size = image.ReadRva(dir.VirtualAddress, table);
        Span<byte> value = stackalloc byte[8];
        for (var at = 0; at + 8 <= size;)
        {
            var page = BinaryPrimitives.ReadUInt32LittleEndian(table.AsSpan(at));
            var blockSize = BinaryPrimitives.ReadUInt32LittleEndian(table.AsSpan(at + 4));
            if (blockSize < 8 || blockSize > size - at) break;
            for (var e = at + 8; e + 2 <= at + blockSize; e += 2)
            {
                var entry = BinaryPrimitives.ReadUInt16LittleEndian(table.AsSpan(e));
                var site = page + (uint)(entry & 0xFFF);
                if (entry >> 12 == 3 && includeHighLow && image.ReadRva(site, value[..4]) == 4) pointers.Add(BinaryPrimitives.ReadUInt32LittleEndian(value));
                else if (entry >> 12 == 10 && image.ReadRva(site, value) == 8) pointers.Add(BinaryPrimitives.ReadUInt64LittleEndian(value));
            }
            at += (int)blockSize;
        }
        return pointers;
    }
}
