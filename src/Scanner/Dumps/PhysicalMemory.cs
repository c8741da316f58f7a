using System.Numerics;

namespace DriverAudit.Scanner.Dumps;

/// <summary>Maps a physical page number to the file offset of its 4 KiB of data.</summary>
internal interface IPhysicalMemory
{
    /// <summary>File offset of page <paramref name="pfn"/>, or -1 when the dump does not hold it.</summary>
    long FileOffsetOf(ulong pfn);

    /// <summary>
    /// How many of the pages [pfn, pfn + count) the dump holds (same answer as <see cref="FileOffsetOf"/> page by
    /// page). Implementations answer from their runs or bitmap words, so a 1 GiB large page does not cost 262,144 lookups.
    /// </summary>
    long CountHeld(ulong pfn, ulong count)
    {
        long held = 0;
        for (ulong i = 0; i < count && pfn + i >= pfn; i++)
            if (FileOffsetOf(pfn + i) >= 0) held++;
        return held;
    }
}

/// <summary>Triage and header-only dumps: no physical pages at all.</summary>
internal sealed class NoPhysicalMemory : IPhysicalMemory
{
    public static readonly NoPhysicalMemory Instance = new();
    public long FileOffsetOf(ulong pfn) => -1;
    public long CountHeld(ulong pfn, ulong count) => 0;
}

/// <summary>
/// Full dumps: the header's run table. Runs are stored back to back in table order; lookups binary-search
/// runs sorted by base PFN, so a page costs O(log runs).
/// </summary>
internal sealed class RunTablePhysicalMemory : IPhysicalMemory
{
    private const int PageSize = 0x1000;
    private readonly ulong[] _base;
    private readonly ulong[] _count;
    private readonly long[] _fileOffset;
    private readonly long _fileLength;

    public RunTablePhysicalMemory(IReadOnlyList<PhysicalRun> runs, long dataStart, ulong declaredPages, long fileLength, DiagnosticBag diagnostics)
    {
        _fileLength = fileLength;
        var kept = new List<(ulong Base, ulong Count, long Offset)>(runs.Count);
        ulong pagesBefore = 0;
        var maxPages = (ulong)(fileLength / PageSize) + 1; // anything larger cannot be stored in this file
        foreach (var run in runs)
        {
            if (run.PageCount == 0) continue;
            if (run.BasePage > ulong.MaxValue - run.PageCount || run.PageCount > (1UL << 40))
            {
                diagnostics.Add(DumpDiagnosticCodes.RunTable, $"Run at PFN 0x{run.BasePage:X} with 0x{run.PageCount:X} pages overflows; it and later runs are ignored.");
                break;
            }
            if (pagesBefore < maxPages)
                kept.Add((run.BasePage, run.PageCount, dataStart + (long)pagesBefore * PageSize));
            pagesBefore += run.PageCount;
        }
        if (declaredPages != DumpHeader.PageFill && declaredPages != pagesBefore)
            diagnostics.Add(DumpDiagnosticCodes.RunTable, $"The run table holds 0x{pagesBefore:X} pages but NumberOfPages says 0x{declaredPages:X}.");
        var needed = pagesBefore * PageSize;
        var available = (ulong)Math.Max(0, fileLength - dataStart);
        if (needed > available)
            diagnostics.Add(DumpDiagnosticCodes.FileTruncated, $"The run table describes 0x{pagesBefore:X} pages but the file holds only 0x{available / PageSize:X}; the rest are reported missing.");

        kept.Sort((a, b) => a.Base.CompareTo(b.Base));
        for (var i = 1; i < kept.Count; i++)
            if (kept[i - 1].Base + kept[i - 1].Count > kept[i].Base)
            {
                diagnostics.Add(DumpDiagnosticCodes.RunTable, $"Runs overlap at PFN 0x{kept[i].Base:X}; the lower run wins.");
                break;
            }
        _base = kept.Select(r => r.Base).ToArray();
        _count = kept.Select(r => r.Count).ToArray();
        _fileOffset = kept.Select(r => r.Offset).ToArray();
    }

    public long FileOffsetOf(ulong pfn)
    {
        int lo = 0, hi = _base.Length - 1, found = -1;
        while (lo <= hi) // last run whose base <= pfn
        {
            var mid = lo + (hi - lo) / 2;
            if (_base[mid] <= pfn) { found = mid; lo = mid + 1; }
            else hi = mid - 1;
        }
        if (found < 0 || pfn - _base[found] >= _count[found]) return -1;
        var delta = pfn - _base[found];
        if (delta > (ulong)(_fileLength / PageSize)) return -1;
        var offset = _fileOffset[found] + (long)delta * PageSize;
        return offset <= _fileLength - PageSize ? offset : -1;
    }

    public long CountHeld(ulong pfn, ulong count)
    {
        if (count == 0) return 0;
        var end = pfn > ulong.MaxValue - count ? ulong.MaxValue : pfn + count; // exclusive
        long held = 0;
        for (var i = 0; i < _base.Length; i++)
        {
            // A PFN belongs to the last run starting at or before it (as FileOffsetOf decides), so a run ends at the next run's base.
            var runEnd = _base[i] + _count[i];
            if (i + 1 < _base.Length && _base[i + 1] < runEnd) runEnd = _base[i + 1];
            var from = Math.Max(pfn, _base[i]);
            var to = Math.Min(end, runEnd);
            if (from >= to) continue;
            // Pages past the end of the file are missing: delta d is held when fileOffset + d × 0x1000 ≤ length − 0x1000.
            var room = _fileLength - PageSize - _fileOffset[i];
            if (room < 0) continue;
            var lastHeld = _base[i] + (ulong)(room / PageSize); // last held PFN of this run
            if (lastHeld < from) continue;
            held += (long)(Math.Min(to - 1, lastHeld) - from + 1);
        }
        return held;
    }
}

/// <summary>
/// Bitmap dumps: bit p set means PFN p is stored, at firstPage + 0x1000 × (set bits before p). A rank index
/// (set bits before each 512-bit block) is built on first use, so a lookup is O(1) with ~1 bit of index
/// per 8 bits of bitmap, and no per-page table exists.
/// </summary>
internal sealed class BitmapPhysicalMemory : IPhysicalMemory
{
    private const int PageSize = 0x1000;
    private const int WordsPerBlock = 8; // 512 bits
    private readonly MappedDumpFile _file;
    private readonly long _bitmapOffset;
    private readonly ulong _bitCount;
    private readonly long _firstPage;
    private readonly ulong _declaredPages;
    private readonly DiagnosticBag _diagnostics;
    private long[]? _blockRank;

    public BitmapPhysicalMemory(MappedDumpFile file, long bitmapOffset, ulong bitCount, long firstPage, ulong declaredPages, DiagnosticBag diagnostics)
    {
        _file = file;
        _bitmapOffset = bitmapOffset;
        _firstPage = firstPage;
        _declaredPages = declaredPages;
        _diagnostics = diagnostics;
        var availableBits = (ulong)Math.Max(0, file.Length - bitmapOffset) * 8;
        if (bitCount > availableBits)
        {
            diagnostics.Add(DumpDiagnosticCodes.FileTruncated, $"The bitmap covers 0x{bitCount:X} pages but the file ends after 0x{availableBits:X} bits of it; later pages are missing.");
            bitCount = availableBits;
        }
        _bitCount = bitCount;
        var bitmapEnd = bitmapOffset + (long)((bitCount + 7) / 8);
        if (firstPage < bitmapEnd)
            diagnostics.Add(DumpDiagnosticCodes.Bitmap, $"The first page (0x{firstPage:X}) lies inside the bitmap (which ends at 0x{bitmapEnd:X}).");
    }

    public long FileOffsetOf(ulong pfn)
    {
        if (pfn >= _bitCount) return -1;
        var word = pfn / 64;
        var bit = (int)(pfn % 64);
        var w = ReadWord(word);
        if ((w & (1UL << bit)) == 0) return -1;
        var ranks = _blockRank ?? BuildRankIndex();
        long rank = ranks[word / WordsPerBlock];
        for (var i = word / WordsPerBlock * WordsPerBlock; i < word; i++)
            rank += BitOperations.PopCount(ReadWord(i));
        rank += BitOperations.PopCount(w & ((1UL << bit) - 1));
        if (rank > (_file.Length - _firstPage) / PageSize) return -1;
        var offset = _firstPage + rank * PageSize;
        return offset >= 0 && offset <= _file.Length - PageSize ? offset : -1;
    }

    public long CountHeld(ulong pfn, ulong count)
    {
        if (count == 0 || pfn >= _bitCount) return 0;
        var end = Math.Min(_bitCount, pfn > ulong.MaxValue - count ? ulong.MaxValue : pfn + count);
        var before = Rank(pfn);
        var set = Rank(end) - before;
        // Set bits whose page lies past the end of the file are missing (FileOffsetOf's rank check).
        var room = _file.Length - PageSize - _firstPage;
        if (room < 0) return 0;
        var maxRank = room / PageSize;
        return Math.Max(0, Math.Min(before + set, maxRank + 1) - before);
    }

    /// <summary>Set bits before <paramref name="pfn"/> (≤ bit count).</summary>
    private long Rank(ulong pfn)
    {
        var ranks = _blockRank ?? BuildRankIndex();
        if (pfn >= _bitCount) return ranks[^1];
        var word = pfn / 64;
        long rank = ranks[word / WordsPerBlock];
        for (var i = word / WordsPerBlock * WordsPerBlock; i < word; i++)
            rank += BitOperations.PopCount(ReadWord(i));
        var bit = (int)(pfn % 64);
        return rank + BitOperations.PopCount(ReadWord(word) & ((1UL << bit) - 1));
    }

    /// <summary>Word i of the bitmap, with bits past the bitmap's end cleared.</summary>
    private ulong ReadWord(ulong index)
    {
        var firstBit = index * 64;
        if (firstBit >= _bitCount) return 0;
        Span<byte> b = stackalloc byte[8];
        b.Clear();
        var bytes = (int)Math.Min(8, (_bitCount - firstBit + 7) / 8);
        _file.Read(_bitmapOffset + (long)(index * 8), b[..bytes]);
        var w = System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(b);
        var valid = _bitCount - firstBit;
        return valid >= 64 ? w : w & ((1UL << (int)valid) - 1);
    }

    private long[] BuildRankIndex()
    {
        var words = (_bitCount + 63) / 64;
        var blocks = (words + WordsPerBlock - 1) / WordsPerBlock;
        var ranks = new long[blocks + 1];
        long total = 0;
        for (ulong i = 0; i < words; i++)
        {
            if (i % WordsPerBlock == 0) ranks[i / WordsPerBlock] = total;
            total += BitOperations.PopCount(ReadWord(i));
        }
        ranks[blocks] = total;
        if ((ulong)total != _declaredPages)
            _diagnostics.Add(DumpDiagnosticCodes.Bitmap, $"The bitmap has 0x{total:X} bits set but the header says 0x{_declaredPages:X} pages are present.");
        var held = Math.Max(0, _file.Length - _firstPage) / PageSize;
        if (total > held)
            _diagnostics.Add(DumpDiagnosticCodes.FileTruncated, $"The bitmap marks 0x{total:X} pages present but the file holds only 0x{held:X}; the rest are reported missing.");
        return Interlocked.CompareExchange(ref _blockRank, ranks, null) ?? ranks;
    }
}
