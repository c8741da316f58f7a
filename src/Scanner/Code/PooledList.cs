using System.Buffers;
using System.Runtime.CompilerServices;

namespace DriverAudit.Scanner.Code;

/// <summary>
/// A growable list whose storage is rented from the shared array pool and handed back on dispose: for the
/// per-image scratch lists of call-site analysis (thousands of entries, dead once the sites are built), so that
/// analysing an image does not leave them for the garbage collector.
/// </summary>
internal sealed class PooledList<T> : IDisposable
{
    private T[] _items;

    public PooledList(int capacity = 64) => _items = ArrayPool<T>.Shared.Rent(Math.Max(capacity, 16));

    public int Count { get; private set; }

    public ref T this[int index]
    {
        get
        {
            if ((uint)index >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(index));
            return ref _items[index];
        }
    }

    public ReadOnlySpan<T> AsSpan() => _items.AsSpan(0, Count);

    public void Add(in T item)
    {
        if (Count == _items.Length)
        {
            var bigger = ArrayPool<T>.Shared.Rent(_items.Length * 2);
            _items.AsSpan(0, Count).CopyTo(bigger);
            Return(_items);
            _items = bigger;
        }
        _items[Count++] = item;
    }

    public void Dispose()
    {
        Return(_items);
        _items = [];
        Count = 0;
    }

    // Entries holding references are cleared, so the pool does not keep an image's regions alive.
    private static void Return(T[] items)
    {
        if (items.Length > 0) ArrayPool<T>.Shared.Return(items, RuntimeHelpers.IsReferenceOrContainsReferences<T>());
    }
}
