using DriverAudit.Scanner.Images;

namespace DriverAudit.Scanner.Pe;

/// <summary>A piece of a section a whole-image pass reads: <see cref="Length"/> bytes at <see cref="Rva"/>.</summary>
internal readonly record struct PeSectionSpan(PeSection Section, uint Rva, uint Length);

internal sealed partial class PeImage
{
    /// <summary>
    /// The data of the sections <paramref name="include"/> keeps, for passes that read whole sections (strings,
    /// disassembly, pointer scans), with every byte behind the image counted once however many section headers
    /// map it. Section headers may overlap freely — 1,024 headers each mapping the whole file are legal to
    /// write — so a pass over <see cref="Sections"/> would cost sections × file size. A span is emitted only for
    /// what no earlier kept section already covered, both as RVAs and (file layout) as file offsets, so the
    /// total is at most the bytes behind the image (the file, or SizeOfImage for a loaded image). Spans keep
    /// header order; each lies inside one section and reads through <see cref="ReadRva"/> like the section does.
    /// </summary>
    public IReadOnlyList<PeSectionSpan> DistinctSpans(Func<PeSection, bool> include)
    {
        var spans = new List<PeSectionSpan>();
        ulong claimed = 0, kept = 0;
        var rvas = new IntervalSet();
        var offsets = new IntervalSet();
        var pieces = new List<(ulong Start, ulong End)>();
        var filePieces = new List<(ulong Start, ulong End)>();
        foreach (var s in _sections)
        {
            if (!include(s)) continue;
            var size = DataSize(s);
            if (size == 0) continue;
            claimed += size;
            pieces.Clear();
            rvas.Uncovered(s.Rva, (ulong)s.Rva + size, pieces);
            foreach (var (start, end) in pieces)
            {
                if (Layout == ImageLayout.Loaded)
                {
                    spans.Add(new PeSectionSpan(s, (uint)start, (uint)(end - start)));
                    continue;
                }
                // File layout: the same raw bytes may sit behind several RVA ranges.
                var raw = (ulong)RawPointer(s) + (start - s.Rva);
                filePieces.Clear();
                offsets.Uncovered(raw, raw + (end - start), filePieces);
                foreach (var (fs, fe) in filePieces)
                    spans.Add(new PeSectionSpan(s, (uint)(start + (fs - raw)), (uint)(fe - fs)));
                offsets.Add(raw, raw + (end - start));
            }
            rvas.Add(s.Rva, (ulong)s.Rva + size);
        }
        foreach (var span in spans) kept += span.Length;
        if (kept < claimed && !_overlapReported)
        {
            _overlapReported = true;
            Diagnose(PeDiagnosticCodes.SectionsOverlap,
                $"section headers map the same bytes more than once ({claimed:N0} bytes claimed, {kept:N0} distinct); each byte is analysed once");
        }
        return spans;
    }

    private bool _overlapReported;

    /// <summary>Disjoint, sorted [start, end) ranges; small (one entry per section at most), so a list is enough.</summary>
    private sealed class IntervalSet
    {
        private readonly List<(ulong Start, ulong End)> _ranges = [];

        /// <summary>Appends the parts of [start, end) no range covers, in order.</summary>
        public void Uncovered(ulong start, ulong end, List<(ulong Start, ulong End)> into)
        {
            var at = start;
            foreach (var (s, e) in _ranges)
            {
                if (e <= at) continue;
                if (s >= end) break;
                if (s > at) into.Add((at, s));
                at = Math.Max(at, e);
                if (at >= end) return;
            }
            if (at < end) into.Add((at, end));
        }

        public void Add(ulong start, ulong end)
        {
            if (start >= end) return;
            var i = 0;
            while (i < _ranges.Count && _ranges[i].End < start) i++;
            // Merge every range that touches [start, end).
            while (i < _ranges.Count && _ranges[i].Start <= end)
            {
                start = Math.Min(start, _ranges[i].Start);
                end = Math.Max(end, _ranges[i].End);
                _ranges.RemoveAt(i);
            }
            _ranges.Insert(i, (start, end));
        }
    }
}
