using System.Collections;
using System.Numerics;

namespace DriverAudit.Scanner.Code;

/// <summary>
/// A set of RVAs below a limit (the image size), as a bitmap allocated a page at a time: adding is a shift and
/// an or instead of a hash insert, and only the parts of the address space the code refers to cost memory
/// (8 KiB per 64 Ki addresses touched). Enumerates in ascending order.
/// </summary>
internal sealed class RvaSet : IReadOnlySet<uint>
{
    private const int PageBits = 16; // addresses per page: 64 Ki, 1,024 words
    private const int WordsPerPage = (1 << PageBits) / 64;

    private readonly ulong[]?[] _pages;

    /// <param name="limit">Every RVA added is below this.</param>
    public RvaSet(uint limit) => _pages = new ulong[]?[(int)(((ulong)limit + (1u << PageBits) - 1) >> PageBits)];

    public int Count { get; private set; }

    /// <summary>Adds <paramref name="rva"/>, which must be below the limit.</summary>
    public bool Add(uint rva)
    {
        var page = _pages[rva >> PageBits] ??= new ulong[WordsPerPage];
        ref var word = ref page[(rva >> 6) & (WordsPerPage - 1)];
        var bit = 1UL << (int)(rva & 63);
        if ((word & bit) != 0) return false;
        word |= bit;
        Count++;
        return true;
    }

    public bool Contains(uint rva)
    {
        var p = rva >> PageBits;
        return p < (uint)_pages.Length && _pages[p] is { } page && (page[(rva >> 6) & (WordsPerPage - 1)] & (1UL << (int)(rva & 63))) != 0;
    }

    public IEnumerator<uint> GetEnumerator()
    {
        for (var p = 0; p < _pages.Length; p++)
        {
            if (_pages[p] is not { } page) continue;
            for (var w = 0; w < page.Length; w++)
            {
                var bits = page[w];
                while (bits != 0)
                {
                    yield return ((uint)p << PageBits) + ((uint)w << 6) + (uint)BitOperations.TrailingZeroCount(bits);
                    bits &= bits - 1;
                }
            }
        }
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>
    /// The members in [<paramref name="from"/>, <paramref name="to"/>), ascending, visiting only the words of that range
    /// (a section's worth of a large set, without walking the rest). No allocation. With <paramref name="step"/> 2, 4 or
    /// 8 (a divisor of 64), only the members a multiple of it away from <paramref name="from"/>, skipped a word at a time.
    /// </summary>
    public RangeEnumerator InRange(uint from, ulong to, int step = 1)
    {
        // The bits of the wanted members repeat every step bits: the pattern for multiples of step, moved to from's phase.
        var mask = step switch { 2 => 0x5555555555555555UL, 4 => 0x1111111111111111UL, 8 => 0x0101010101010101UL, _ => ~0UL };
        if (step is 2 or 4 or 8) mask <<= (int)(from % (uint)step);
        return new(_pages, from, Math.Min(to, (ulong)_pages.Length << PageBits), mask);
    }

    /// <summary>Every member, ascending, without the interface enumerator's per-member calls.</summary>
    public RangeEnumerator All() => InRange(0, (ulong)_pages.Length << PageBits);

    /// <summary>See <see cref="InRange"/>: a foreach-able struct enumerator.</summary>
    public struct RangeEnumerator
    {
        private readonly ulong[]?[] _pages;
        private readonly ulong _to;
        private readonly ulong _lastWord;
        private readonly ulong _mask;
        private ulong _word; // the word being consumed (address / 64)
        private ulong _bits; // its members not yet returned

        internal RangeEnumerator(ulong[]?[] pages, uint from, ulong to, ulong mask)
        {
            _pages = pages;
            _to = to;
            _mask = mask;
            Current = 0;
            if (from >= to)
            {
                _word = _lastWord = 0;
                _bits = 0;
                return;
            }
            _word = from >> 6;
            _lastWord = (to - 1) >> 6;
            _bits = Word(_word) & (~0UL << (int)(from & 63)) & mask;
        }

        public uint Current { get; private set; }

        public readonly RangeEnumerator GetEnumerator() => this;

        public bool MoveNext()
        {
            while (true)
            {
                if (_bits != 0)
                {
                    var rva = (_word << 6) + (ulong)BitOperations.TrailingZeroCount(_bits);
                    _bits &= _bits - 1;
                    if (rva >= _to) { _bits = 0; _word = _lastWord; return false; }
                    Current = (uint)rva;
                    return true;
                }
                if (++_word > _lastWord) { _word = _lastWord; return false; }
                if (_pages[_word >> (PageBits - 6)] is not { } page)
                {
                    _word |= WordsPerPage - 1; // a page never allocated holds no member: go on with the next page
                    continue;
                }
                _bits = page[(int)(_word & (WordsPerPage - 1))] & _mask;
            }
        }

        private readonly ulong Word(ulong word) =>
            _pages[word >> (PageBits - 6)] is { } page ? page[(int)(word & (WordsPerPage - 1))] : 0;
    }

    // Set relations, for the interface: not on any hot path.
    public bool IsProperSubsetOf(IEnumerable<uint> other) => new HashSet<uint>(this).IsProperSubsetOf(other);
    public bool IsProperSupersetOf(IEnumerable<uint> other) => new HashSet<uint>(this).IsProperSupersetOf(other);
    public bool IsSubsetOf(IEnumerable<uint> other) => new HashSet<uint>(this).IsSubsetOf(other);
    public bool IsSupersetOf(IEnumerable<uint> other) => other.All(Contains);
    public bool Overlaps(IEnumerable<uint> other) => other.Any(Contains);
    public bool SetEquals(IEnumerable<uint> other) => new HashSet<uint>(this).SetEquals(other);
}
