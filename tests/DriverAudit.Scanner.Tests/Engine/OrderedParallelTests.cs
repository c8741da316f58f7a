using DriverAudit.Scanner.Engine;
using FsCheck;
using FsCheck.Fluent;
using Xunit;

namespace DriverAudit.Scanner.Tests.Engine;

public sealed class OrderedParallelTests
{
    [FsCheck.Xunit.Property(MaxTest = 40)]
    public bool Results_come_out_in_input_order_whatever_the_timing(PositiveInt count, PositiveInt degree)
    {
        var n = count.Get % 200;
        var d = 1 + degree.Get % 8;
        var input = Enumerable.Range(0, n).ToList();
        var output = OrderedParallel.Map(input, i =>
        {
            if (i % 7 == 0) Thread.Sleep(i % 3); // uneven work
            return i * 2;
        }, d).ToList();
        return output.SequenceEqual(input.Select(i => i * 2));
    }

    [Fact]
    public void In_flight_items_are_bounded_by_the_window()
    {
        var inFlight = 0;
        var maxInFlight = 0;
        var produced = 0;
        IEnumerable<int> Source()
        {
            for (var i = 0; i < 500; i++)
            {
                Interlocked.Increment(ref produced);
                var now = Interlocked.Increment(ref inFlight);
                int seen;
                while ((seen = Volatile.Read(ref maxInFlight)) < now && Interlocked.CompareExchange(ref maxInFlight, now, seen) != seen) { }
                yield return i;
            }
        }
        foreach (var _ in OrderedParallel.Map(Source(), i => i, 4))
            Interlocked.Decrement(ref inFlight);

        Assert.Equal(500, produced);
        // Window (4 × WindowPerWorker) + the item the producer pulled before waiting for a slot + the one just released to the
        // consumer but not yet counted down by it.
        Assert.InRange(maxInFlight, 1, 4 * OrderedParallel.WindowPerWorker + 2);
    }

    [Fact]
    public void An_exception_in_the_map_surfaces_to_the_consumer()
    {
        var e = Assert.Throws<AggregateException>(() =>
            OrderedParallel.Map(Enumerable.Range(0, 20), i => i == 5 ? throw new InvalidOperationException("boom") : i, 3).ToList());
        Assert.Contains("boom", e.ToString());
    }
}
