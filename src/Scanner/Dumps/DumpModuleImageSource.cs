using DriverAudit.Scanner.Images;

namespace DriverAudit.Scanner.Dumps;

/// <summary>
/// A module of a kernel dump in loaded layout (offset == RVA). Pages are translated lazily, once each, and the
/// result (file offset or "missing") is cached per page; bytes are read straight from the mapped dump, so
/// even ntoskrnl costs one long per page. Disposing it is free; disposing the dump makes reads throw
/// <see cref="ObjectDisposedException"/>.
/// </summary>
public sealed class DumpModuleImageSource : IImageSource
{
    public const int PageSize = 0x1000;
    private const long Unknown = 0;
    private const long Missing = -1;
    private readonly KernelDump _dump;
    private readonly long[] _pageOffsets; // Unknown, Missing, or file offset (always past the header, so > 0)
    private readonly bool _byteRuns; // triage: data blocks need not cover whole pages, so reads follow the blocks

    internal DumpModuleImageSource(KernelDump dump, DumpModule module)
    {
        _dump = dump;
        Module = module;
        Length = module.Size;
        PageCount = (int)((module.Size + (long)PageSize - 1) / PageSize);
        _pageOffsets = new long[PageCount];
        if (!module.ImageAvailable) Array.Fill(_pageOffsets, Missing);
        else _byteRuns = dump.IsTriage;
        Origin = new ImageOrigin(dump.Path, module.Name, module.Base, module.FullPath);
    }

    public DumpModule Module { get; }
    public ImageLayout Layout => ImageLayout.Loaded;
    public long Length { get; }
    public ImageOrigin Origin { get; }
    public int PageCount { get; }

    /// <summary>True when page <paramref name="pageIndex"/> (RVA / 0x1000) is in the dump.</summary>
    public bool IsPagePresent(int pageIndex) => pageIndex >= 0 && pageIndex < PageCount && PageOffset(pageIndex) > 0;

    /// <summary>Number of pages of the image the dump does not hold (translates every page once).</summary>
    public int CountMissingPages()
    {
        var missing = 0;
        for (var i = 0; i < PageCount; i++)
            if (PageOffset(i) < 0) missing++;
        return missing;
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

    private long PageOffset(int page)
    {
        if (_byteRuns)
        {
            // A page counts as present only when the blocks hold all of it.
            var start = page * (long)PageSize;
            return IsAvailable(start, Math.Min(PageSize, Length - start)) ? 1 : Missing;
        }
        var cached = _pageOffsets[page];
        if (cached != Unknown) return cached;
        var offset = _dump.FileOffsetOfVirtual(Module.Base + (ulong)page * PageSize);
        // A racing thread computes the same value; a torn write cannot happen for an aligned long on 64-bit.
        _pageOffsets[page] = offset > 0 ? offset : Missing;
        return _pageOffsets[page];
    }

    public void Dispose() { }
}
