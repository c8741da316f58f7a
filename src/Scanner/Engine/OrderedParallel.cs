using System.Threading.Channels;

namespace DriverAudit.Scanner.Engine;

/// <summary>
/// Maps a lazy sequence through a function on several threads and yields the results in input order.
/// At most <c>window</c> items are in flight or waiting to be yielded, so memory stays flat however
/// long the sequence is and however slow one item is.
/// </summary>
internal static class OrderedParallel
{
    /// <summary>Items in flight or waiting to be yielded, per worker.</summary>
    public const int WindowPerWorker = 16;

    public static IEnumerable<TOut> Map<TIn, TOut>(IEnumerable<TIn> source, Func<TIn, TOut> map, int degree, CancellationToken cancel = default)
    {
        degree = Math.Max(1, degree);
        if (degree == 1)
        {
            foreach (var item in source)
            {
                cancel.ThrowIfCancellationRequested();
                yield return map(item);
            }
            yield break;
        }

        // Wide enough that one large image (a 26 MB DLL takes ~100× a small driver) does not leave the other
        // workers idle behind it: they go on with the next WindowPerWorker items per worker meanwhile. Waiting
        // items are small reports, so memory stays flat.
        var window = degree * WindowPerWorker;
        using var slots = new SemaphoreSlim(window, window);
        var work = Channel.CreateBounded<(long Seq, TIn Item)>(new BoundedChannelOptions(window) { SingleWriter = true });
        var done = Channel.CreateUnbounded<(long Seq, TOut Result, Exception? Error)>(new UnboundedChannelOptions { SingleReader = true });
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancel);

        var producer = Task.Run(async () =>
        {
            try
            {
                long seq = 0;
                foreach (var item in source)
                {
                    await slots.WaitAsync(stop.Token).ConfigureAwait(false);
                    await work.Writer.WriteAsync((seq++, item), stop.Token).ConfigureAwait(false);
                }
                work.Writer.Complete();
            }
            catch (Exception e)
            {
                work.Writer.Complete(e);
            }
        });

        var workers = Enumerable.Range(0, degree).Select(_ => Task.Run(async () =>
        {
            await foreach (var (seq, item) in work.Reader.ReadAllAsync(stop.Token).ConfigureAwait(false))
            {
                TOut result = default!;
                Exception? error = null;
                try { result = map(item); }
                catch (Exception e) { error = e; }
                await done.Writer.WriteAsync((seq, result, error), stop.Token).ConfigureAwait(false);
            }
        })).ToArray();

        var finisher = Task.WhenAll(workers).ContinueWith(t => done.Writer.Complete(t.Exception), TaskScheduler.Default);

        var pending = new Dictionary<long, (TOut Result, Exception? Error)>();
        long next = 0;
        try
        {
            var reader = done.Reader;
            while (true)
            {
                while (pending.Remove(next, out var ready))
                {
                    if (ready.Error is not null) throw new AggregateException(ready.Error);
                    next++;
                    slots.Release();
                    yield return ready.Result;
                }
                if (!reader.WaitToReadAsync(stop.Token).AsTask().GetAwaiter().GetResult()) break;
                while (reader.TryRead(out var r)) pending[r.Seq] = (r.Result, r.Error);
            }
            // The producer may have failed (the source threw): surface it.
            producer.GetAwaiter().GetResult();
            if (work.Reader.Completion.IsFaulted) work.Reader.Completion.GetAwaiter().GetResult();
        }
        finally
        {
            stop.Cancel();
            try { Task.WaitAll([producer, finisher]); } catch (AggregateException) { }
        }
    }
}
