using DriverAudit.Scanner.Images;

namespace DriverAudit.Scanner.Dumps;

/// <summary>
/// A module of a kernel dump in loaded layout (offset == RVA). Pages are translated lazily, once each, and the
/// result (file offset or "missing") is cached in 512-page chunks made when a page of theirs is first read, so
/// memory follows the pages read, not the size the module claims. Bytes are read straight from the mapped dump.
/// Disposing it is free; disposing the dump makes reads throw <see cref="ObjectDisposedException"/>.
/// </summary>
internal sealed class DumpModuleImageSource : IImageSource
{
    public const int PageSize = 0x1000;
    private const long Unknown = 0;
    private const long Missing = -1;
    private const int ChunkPages = 512;
    private readonly KernelDump _dump;
    private readonly bool _available;
    private readonly long[]?[] _chunks; // per 512 pages: Unknown, Missing, or file offset + 1 (a raw image's page 0 is at offset 0)
    private readonly bool _byteRuns; // triage: data blocks need not cover whole pages, so reads follow the blocks

    internal DumpModuleImageSource(KernelDump dump, DumpModule module)
    {
        _dump = dump;
        Module = module;
        Length = module.Size;
        PageCount = (int)((module.Size + (long)PageSize - 1) / PageSize);
        _chunks = new long[]?[(PageCount + ChunkPages - 1) / ChunkPages];
        _available = module.ImageAvailable;
        _byteRuns = _available && dump.IsTriage;
        Origin = new ImageOrigin(dump.Path, module.Name, module.Base, module.FullPath);
    }

    public DumpModule Module { get; }
    public ImageLayout Layout => ImageLayout.Loaded;
    public long Length { get; }
    public ImageOrigin Origin { get; }
    public int PageCount { get; }

    /// <summary>True when page <paramref name="pageIndex"/> (RVA / 0x1000) is in the dump.</summary>
    public bool IsPagePresent(int pageIndex) => pageIndex >= 0 && pageIndex < PageCount && PageOffset(pageIndex) >= 0;

    /// <summary>
    /// Number of pages of the image the dump does not hold. Costs what the dump holds, not what the module claims:
    /// the page tables are walked once per table (absent upper-level entries skip their whole region), triage
    /// dumps look only at pages their data blocks reach, and nothing is cached per page.
    /// </summary>
    public int CountMissingPages()
    {
        if (!_available) return PageCount;
        return PageCount - (int)(_byteRuns ? CountCapturedPages() : _dump.CountHeldPages(Module.Base, PageCount));
    }

    /// <summary>Triage: pages wholly copied by data blocks; pages between blocks are skipped in one step.</summary>
    private long CountCapturedPages()
    {
        long held = 0;
        for (var page = 0L; page < PageCount;)
        {
            var start = page * PageSize;
            if (IsAvailable(start, Math.Min(PageSize, Length - start))) { held++; page++; continue; }
            // Jump to the page of the next block that starts after this page's first byte (or stop).
            var next = _dump.Triage!.NextBlockStart(Module.Base + (ulong)start);
            if (next is not { } at || at >= Module.Base + (ulong)Length) break;
            page = Math.Max(page + 1, (long)((at - Module.Base) / PageSize));
        }
        return held;
    }

    public int Read(long position, Span<byte> destination)
    {
        if (position < 0 || position >= Length || destination.IsEmpty) return 0;
        var want = (int)Math.Min(destination.Length, Length - position);
        var done = 0;
        if (_byteRuns) return ReadRuns(position, destination[..want]);
        while (done < want)
        {
            var at = position + done;
            var page = (int)(at / PageSize);
            var offset = PageOffset(page);
            if (offset < 0) break;
            var inPage = (int)(at % PageSize);
            var n = Math.Min(PageSize - inPage, want - done);
            if (_dump.File.Read(offset + inPage, destination.Slice(done, n)) != n) break;
            done += n;
        }
        return done;
    }

    public bool IsAvailable(long position, long length)
    {
        if (position < 0 || length < 0 || position > Length || length > Length - position) return false;
        if (length == 0) return true;
        if (_byteRuns)
        {
            for (var at = position; at < position + length;)
            {
                if (_dump.FileOffsetOfVirtual(Module.Base + (ulong)at, out var run) < 0) return false;
                at += run;
            }
            return true;
        }
        for (var page = position / PageSize; page * PageSize < position + length; page++)
            if (PageOffset((int)page) < 0) return false;
        return true;
    }

    /// <summary>Reads through the data blocks (triage): stops at the first byte no block holds.</summary>
    private int ReadRuns(long position, Span<byte> destination)
    {
        var done = 0;
        while (done < destination.Length)
        {
            var offset = _dump.FileOffsetOfVirtual(Module.Base + (ulong)(position + done), out var run);
            if (offset < 0) break;
            var n = Math.Min(run, destination.Length - done);
            if (_dump.File.Read(offset, destination.Slice(done, n)) != n) break;
            done += n;
        }
        return done;
    }

    /// <summary>File offset of the page's first byte, or -1 when the dump does not hold the page.</summary>
    private long PageOffset(int page)
    {
        if (!_available) return Missing;
        if (_byteRuns)
        {
            // A page counts as present only when the blocks hold all of it.
            var start = page * (long)PageSize;
            return IsAvailable(start, Math.Min(PageSize, Length - start)) ? 0 : Missing;
        }
        var chunk = _chunks[page / ChunkPages];
        if (chunk is null)
        {
            // A racing thread may make its own chunk; whichever is published, both hold only correct values.
            chunk = new long[ChunkPages];
            chunk = Interlocked.CompareExchange(ref _chunks[page / ChunkPages], chunk, null) ?? chunk;
        }
        var cached = chunk[page % ChunkPages];
        if (cached != Unknown) return cached < 0 ? Missing : cached - 1;
        var offset = _dump.FileOffsetOfVirtual(Module.Base + (ulong)page * PageSize);
        // A racing thread computes the same value; a torn write cannot happen for an aligned long on 64-bit.
        chunk[page % ChunkPages] = offset >= 0 ? offset + 1 : Missing;
        return offset >= 0 ? offset : Missing;
    }

    public void Dispose() { }
}
