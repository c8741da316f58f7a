using System.Buffers.Binary;
using DriverAudit.Rules.Facts;
using DriverAudit.Scanner.Images;
using DriverAudit.Scanner.Pe;

namespace DriverAudit.Scanner.Code;

/// <summary>One executable section's bytes, read once. Missing pages (dumps) read as zeros.</summary>
internal sealed record CodeSection(string Name, uint Rva, byte[] Bytes)
{
    public uint EndRva => Rva + (uint)Bytes.Length;
    public bool Contains(uint rva) => rva >= Rva && rva < EndRva;
}

/// <summary>
/// The executable bytes of one image and what the code analysis needs to know about it: bitness, the base the
/// absolute (x86) addresses in the code were linked or relocated against, and the x64 function table.
/// Built only when code facts are first asked for.
/// </summary>
internal sealed class CodeImage
{
    /// <summary>Sections bigger than this are read only up to it: no driver has 256 MiB of code.</summary>
    public const int MaxSectionBytes = 256 << 20;
    /// <summary>Executable bytes read (and so disassembled) per image at most, whatever the sections claim.</summary>
    public const long MaxCodeBytes = 64L << 20;
    private const int RuntimeFunctionSize = 12;

    private CodeImage(int bitness, bool arm64, ulong addressBase, CodeSection[] sections, FunctionTable functions)
    {
        Bitness = bitness;
        IsArm64 = arm64;
        AddressBase = addressBase;
        Sections = sections;
        Functions = functions;
    }

    public int Bitness { get; }
    public bool Is64 => Bitness == 64;

    /// <summary>ARM64 (A64) code rather than x86/x64: decoded by <see cref="Arm64.A64Decoder"/>, not Iced.</summary>
    public bool IsArm64 { get; }

    /// <summary>x86: absolute addresses in the code are AddressBase + RVA.</summary>
    public ulong AddressBase { get; }

    public IReadOnlyList<CodeSection> Sections { get; }
    public FunctionTable Functions { get; }

    /// <summary>Null when the machine is not x86, x64 or ARM64.</summary>
    public static CodeImage? Load(PeImage image)
    {
        int bitness = image.Machine switch { PeMachine.X64 or PeMachine.Arm64 => 64, PeMachine.X86 => 32, _ => 0 };
        if (bitness == 0) return null;
        var sections = new List<CodeSection>();
        long budget = MaxCodeBytes;
        // Sized by the data behind each section, never by its declared (possibly hostile) virtual size, and each
        // byte once however many section headers map it: disassembly cost follows the file, not the header count.
        foreach (var span in image.DistinctSpans(static s => s.Executable))
        {
            var size = (int)Math.Min(span.Length, Math.Min(MaxSectionBytes, budget));
            if (size > 0) sections.Add(new CodeSection(span.Section.Name, span.Rva, ReadPresent(image, span.Rva, size)));
            budget -= size;
            if (size < span.Length)
            {
                image.Diagnose(PeDiagnosticCodes.BudgetReached,
                    $"code analysis read {MaxCodeBytes >> 20} MiB of executable bytes, the most per image; the code at RVA 0x{span.Rva + (uint)size:x} and after was not analysed");
                break;
            }
        }
        // A relocated dump module's code holds addresses against its load base, a file's against ImageBase.
        var origin = image.Source.Origin;
        var addressBase = image.Layout == ImageLayout.Loaded && origin.ModuleBase is { } loaded ? loaded : image.ImageBase;
        var arm64 = image.Machine == PeMachine.Arm64;
        var functions = arm64 ? ReadArm64FunctionTable(image) : bitness == 64 ? ReadFunctionTable(image) : FunctionTable.Empty;
        return new CodeImage(bitness, arm64, addressBase, [.. sections], functions);
    }

    public CodeSection? FindSection(uint rva)
    {
        foreach (var s in Sections)
            if (s.Contains(rva)) return s;
        return null;
    }

    /// <summary>x86: the RVA an absolute address points at, or null when outside the image.</summary>
    public uint? AbsoluteToRva(ulong address)
    {
        if (address < AddressBase) return null;
        var rva = address - AddressBase;
        return rva <= uint.MaxValue ? (uint)rva : null;
    }

    // Page by page, so one missing page in a dump costs that page only. When a read's bytes do not depend on where
    // it starts (see PositionIndependent), one read serves every page up to the first byte it could not read, and the
    // pages from the next one on are read as before; the page holding that byte keeps zeros after it either way.
    private static byte[] ReadPresent(PeImage image, uint rva, int size)
    {
        var bytes = new byte[size];
        const int Page = 0x1000;
        var start = 0;
        if (PositionIndependent(image))
        {
            var got = image.ReadRva(rva, bytes);
            if (got == size) return bytes;
            start = got + Page - (int)((rva + (uint)got) % Page);
        }
        for (var at = start; at < size;)
        {
            var n = Math.Min(Page - (int)((rva + (uint)at) % Page), size - at);
            image.ReadRva(rva + (uint)at, bytes.AsSpan(at, n)); // short reads leave zeros
            at += n;
        }
        return bytes;
    }

    /// <summary>
    /// Whether every byte <see cref="PeImage.ReadRva"/> copies is the same whatever RVA the read started at, so a
    /// slice of one long read equals a short read of the slice: true for loaded images (offset == RVA), and for file
    /// images whose sections neither overlap each other nor the headers. Otherwise a read that starts in one section
    /// (or in the headers) keeps copying its bytes where another section would answer a read starting there.
    /// </summary>
    internal static bool PositionIndependent(PeImage image)
    {
        if (image.Layout == ImageLayout.Loaded) return true;
        var sections = image.Sections;
        var ranges = new (ulong Start, ulong End)[sections.Count];
        for (var k = 0; k < ranges.Length; k++)
        {
            var s = sections[k];
            if (s.MappedSize == 0) continue;
            if (s.Rva < image.SizeOfHeaders) return false;
            ranges[k] = (s.Rva, (ulong)s.Rva + s.MappedSize);
        }
        Array.Sort(ranges);
        for (var k = 1; k < ranges.Length; k++)
            if (ranges[k].Start < ranges[k - 1].End) return false;
        return true;
    }

    // Directory 3: RUNTIME_FUNCTION { BeginAddress, EndAddress, UnwindInfo } sorted by BeginAddress.
    private static FunctionTable ReadFunctionTable(PeImage image)
    {
        var dir = image.GetDirectory(3);
        if (!dir.IsPresent) return FunctionTable.Empty;
        var count = (int)Math.Min(dir.Size / RuntimeFunctionSize, Math.Min(image.SpanLimit(dir.VirtualAddress) / RuntimeFunctionSize, 1u << 20));
        if (count == 0) return FunctionTable.Empty;
        var raw = new byte[count * RuntimeFunctionSize];
        count = image.ReadRva(dir.VirtualAddress, raw) / RuntimeFunctionSize;
        var list = new List<FunctionRange>(count);
        for (var i = 0; i < count; i++)
        {
            var begin = BinaryPrimitives.ReadUInt32LittleEndian(raw.AsSpan(i * RuntimeFunctionSize));
            var end = BinaryPrimitives.ReadUInt32LittleEndian(raw.AsSpan(i * RuntimeFunctionSize + 4));
            var unwind = BinaryPrimitives.ReadUInt32LittleEndian(raw.AsSpan(i * RuntimeFunctionSize + 8));
            if (begin == 0 && end == 0) break;
            if (end > begin && end - begin <= MaxSectionBytes) list.Add(new FunctionRange(begin, end, PrimaryOf(image, begin, unwind)));
        }
        return new FunctionTable(list);
    }

    private const int Arm64RuntimeFunctionSize = 8;

    /// <summary>
    /// ARM64 directory 3: { BeginAddress, UnwindData }. UnwindData's low two bits (Flag) say how to read it: 0, an RVA of
    /// an .xdata record whose first word holds FunctionLength (bits 0..17, in instructions); 1 (function) or 2
    /// (fragment without prologue), packed unwind data with FunctionLength in bits 2..12; 3 is reserved.
    /// </summary>
    private static FunctionTable ReadArm64FunctionTable(PeImage image)
    {
        var dir = image.GetDirectory(3);
        if (!dir.IsPresent) return FunctionTable.Empty;
        var count = (int)Math.Min(dir.Size / Arm64RuntimeFunctionSize, Math.Min(image.SpanLimit(dir.VirtualAddress) / Arm64RuntimeFunctionSize, 1u << 20));
        if (count == 0) return FunctionTable.Empty;
        var raw = new byte[count * Arm64RuntimeFunctionSize];
        count = image.ReadRva(dir.VirtualAddress, raw) / Arm64RuntimeFunctionSize;
        var list = new List<FunctionRange>(count);
        Span<byte> head = stackalloc byte[4];
        for (var i = 0; i < count; i++)
        {
            var begin = BinaryPrimitives.ReadUInt32LittleEndian(raw.AsSpan(i * Arm64RuntimeFunctionSize));
            var unwind = BinaryPrimitives.ReadUInt32LittleEndian(raw.AsSpan(i * Arm64RuntimeFunctionSize + 4));
            if (begin == 0 && unwind == 0) break;
            uint length;
            switch (unwind & 3)
            {
                case 0:
                    if (image.ReadRva(unwind, head) < 4) continue;
                    length = (BinaryPrimitives.ReadUInt32LittleEndian(head) & 0x3FFFF) * 4;
                    break;
                case 1:
                case 2:
                    length = ((unwind >> 2) & 0x7FF) * 4;
                    break;
                default:
                    continue;
            }
            if ((begin & 3) != 0 || length == 0 || length > MaxSectionBytes || (ulong)begin + length > uint.MaxValue) continue;
            list.Add(new FunctionRange(begin, begin + length, begin));
        }
        return new FunctionTable(list);
    }

    private const byte UnwindChainInfo = 0x4;
    private const int MaxChain = 32;

    /// <summary>
    /// The start of the function a .pdata entry belongs to: a fragment whose unwind info is chained
    /// (UNW_FLAG_CHAININFO, or an unwind RVA with bit 0 set naming another RUNTIME_FUNCTION) belongs to the
    /// function its chain ends at. Chains are followed at most <see cref="MaxChain"/> deep (hostile loops).
    /// </summary>
    private static uint PrimaryOf(PeImage image, uint begin, uint unwind)
    {
        var primary = begin;
        Span<byte> head = stackalloc byte[4];
        Span<byte> rf = stackalloc byte[RuntimeFunctionSize];
        for (var depth = 0; depth < MaxChain; depth++)
        {
            uint next;
            if ((unwind & 1) != 0) next = unwind & ~1u; // indirect: points at the primary RUNTIME_FUNCTION
            else
            {
                if (image.ReadRva(unwind, head) < 4 || ((head[0] >> 3) & UnwindChainInfo) == 0) return primary;
                var codes = (head[2] + 1) & ~1; // the code array is padded to an even count
                next = unwind + 4 + (uint)codes * 2;
            }
            if (image.ReadRva(next, rf) < RuntimeFunctionSize) return primary;
            var chained = BinaryPrimitives.ReadUInt32LittleEndian(rf);
            if (chained == 0 || chained == primary) return primary;
            primary = chained;
            unwind = BinaryPrimitives.ReadUInt32LittleEndian(rf[8..]);
        }
        return primary;
    }
}

/// <summary>One .pdata entry: a code range and the function it belongs to (itself, or the primary of a chain).</summary>
internal readonly record struct FunctionRange(uint Begin, uint End, uint Primary);

/// <summary>x64 function ranges from .pdata, for "where does the function containing this site start".</summary>
internal sealed class FunctionTable
{
    public static FunctionTable Empty { get; } = new([]);
    private readonly FunctionRange[] _ranges;

    public FunctionTable(List<FunctionRange> ranges)
    {
        ranges.Sort((a, b) => a.Begin.CompareTo(b.Begin)); // hostile tables need not be sorted
        _ranges = [.. ranges];
    }

    public int Count => _ranges.Length;

    public IReadOnlyList<FunctionRange> Entries => _ranges;

    /// <summary>The function range containing <paramref name="rva"/>, or null.</summary>
    public FunctionRange? Find(uint rva)
    {
        int lo = 0, hi = _ranges.Length - 1;
        while (lo <= hi)
        {
            var mid = (lo + hi) >>> 1;
            if (_ranges[mid].Begin <= rva) lo = mid + 1; else hi = mid - 1;
        }
        // hi is the last range starting at or before rva; overlapping hostile ranges: scan back a little.
        for (var i = hi; i >= 0 && i > hi - 4; i--)
            if (rva < _ranges[i].End && rva >= _ranges[i].Begin) return _ranges[i];
        return null;
    }
}
