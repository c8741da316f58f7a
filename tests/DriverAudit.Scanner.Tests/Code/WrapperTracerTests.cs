using DriverAudit.Scanner.Code;
using Iced.Intel;
using Xunit;
using static Iced.Intel.AssemblerRegisters;

namespace DriverAudit.Scanner.Tests.Code;

/// <summary>
/// Hand-assembled x64 wrappers (no .pdata: function starts come from the direct calls, as on x86): a parameter is
/// followed only when every path from the wrapper's entry delivers it unchanged.
/// </summary>
public class WrapperTracerTests
{
    private const string Alloc = "ExAllocatePoolWithTag";
    private const uint Tag1 = 0x31706157; // 'Wap1' in memory order

    private static void CallSlot(Assembler a) =>
        a.AddInstruction(Instruction.Create(Iced.Intel.Code.Call_rm64, new MemoryOperand(Register.RIP, (long)CodePe.Va(true, CodePe.Slot(true, 0)))));

    /// <summary>DriverEntry calls <paramref name="wrapper"/> with tag 'Wap1', NonPagedPoolNx, 0x40.</summary>
    private static ImageTags Build(Action<Assembler, Label> wrapper)
    {
        var facts = CodePe.Facts(true, a =>
        {
            var w = a.CreateLabel();
            a.sub(rsp, 0x28);
            a.mov(r8d, Tag1);
            a.mov(edx, 0x40);
            a.mov(ecx, 0x200);
            a.call(w);
            a.add(rsp, 0x28);
            a.ret();
            a.int3();
            wrapper(a, w);
        }, Alloc);
        return TagIndex.Build(facts);
    }

    [Fact]
    public void A_parameter_passed_on_every_path_is_the_callers_constant()
    {
        var tags = Build((a, w) =>
        {
            var join = a.CreateLabel();
            a.Label(ref w);
            a.sub(rsp, 0x28);
            a.test(rdx, rdx);
            a.jz(join);
            a.nop();
            a.Label(ref join);
            CallSlot(a);
            a.add(rsp, 0x28);
            a.ret();
        });
        var use = Assert.Single(tags.Tags);
        Assert.Equal((Tag1, 0x200UL), (use.Value, use.PoolType!.Value));
        Assert.Single(use.Via);
        Assert.Equal(0, tags.UnknownTagSites);
    }

    [Fact]
    public void Paths_that_disagree_leave_the_tag_unknown()
    {
        var tags = Build((a, w) =>
        {
            var join = a.CreateLabel();
            a.Label(ref w);
            a.sub(rsp, 0x28);
            a.test(rdx, rdx);
            a.jz(join);
            a.mov(r8d, 0x41414141); // one path replaces the tag
            a.Label(ref join);
            CallSlot(a);
            a.add(rsp, 0x28);
            a.ret();
        });
        Assert.Empty(tags.Tags);
        Assert.Equal(1, tags.UnknownTagSites);
    }

    [Fact]
    public void A_loop_closing_after_the_call_makes_the_tag_unknown()
    {
        var tags = Build((a, w) =>
        {
            var head = a.CreateLabel();
            a.Label(ref w);
            a.push(rbx);
            a.sub(rsp, 0x20);
            a.mov(ebx, r8d);
            a.Label(ref head);
            a.mov(r8d, ebx);
            a.mov(edx, 0x10);
            a.mov(ecx, 0x200);
            CallSlot(a);
            a.add(ebx, 1);          // the next iteration allocates with another tag
            a.test(rax, rax);
            a.jnz(head);
            a.add(rsp, 0x20);
            a.pop(rbx);
            a.ret();
        });
        Assert.Empty(tags.Tags);
        Assert.Equal(1, tags.UnknownTagSites);
    }

    [Fact]
    public void A_parameter_kept_in_a_stack_slot_across_a_call_is_followed_but_not_one_the_callee_may_overwrite()
    {
        // -O0 style: the tag spilled to the home area, reloaded after an unrelated call.
        ImageTags Spill(bool escape) => Build((a, w) =>
        {
            var other = a.CreateLabel();
            a.Label(ref w);
            a.push(rbp);
            a.mov(rbp, rsp);
            a.sub(rsp, 0x30);
            a.mov(__dword_ptr[rbp - 4], r8d);
            if (escape) a.lea(rcx, __[rbp - 4]); // the slot's address handed out
            a.call(other);
            a.mov(r8d, __dword_ptr[rbp - 4]);
            a.mov(edx, 0x10);
            a.mov(ecx, 0x200);
            CallSlot(a);
            a.leave();
            a.ret();
            a.Label(ref other);
            a.ret();
        });
        Assert.Equal(Tag1, Assert.Single(Spill(escape: false).Tags).Value);
        Assert.Empty(Spill(escape: true).Tags);
    }

    [Fact]
    public void Recursion_and_chains_deeper_than_the_bound_stop_and_stay_unknown()
    {
        // W_k(tag) calls W_{k-1}(tag); W_0 allocates. DriverEntry calls W_n.
        ImageTags Chain(int levels) => Build((a, top) =>
        {
            var labels = Enumerable.Range(0, levels).Select(_ => a.CreateLabel()).ToArray();
            for (var k = levels - 1; k >= 0; k--)
            {
                var here = k == levels - 1 ? top : labels[k];
                a.Label(ref here);
                if (k == levels - 1) labels[k] = here;
                a.sub(rsp, 0x28);
                if (k == 0) CallSlot(a); else a.call(labels[k - 1]);
                a.add(rsp, 0x28);
                a.ret();
            }
        });
        var within = Chain(WrapperTracer.MaxDepth);
        Assert.Equal(WrapperTracer.MaxDepth, Assert.Single(within.Tags).Via.Count);
        var beyond = Chain(WrapperTracer.MaxDepth + 1);
        Assert.Empty(beyond.Tags);
        Assert.Equal(1, beyond.UnknownTagSites);

        // A wrapper that also calls itself with its own parameter: no loop, and the outside caller still counts.
        var recursive = Build((a, w) =>
        {
            var done = a.CreateLabel();
            a.Label(ref w);
            a.push(rbx);
            a.sub(rsp, 0x20);
            a.mov(ebx, r8d);        // kept across the recursive call in a callee-saved register
            a.test(rdx, rdx);
            a.jz(done);
            a.call(w);
            a.Label(ref done);
            a.mov(r8d, ebx);
            CallSlot(a);
            a.add(rsp, 0x20);
            a.pop(rbx);
            a.ret();
        });
        var outside = Assert.Single(recursive.Tags);
        Assert.Equal(Tag1, outside.Value);
        Assert.Single(outside.Via);
        Assert.Equal(1, recursive.UnknownTagSites); // the self-call passes the wrapper's own parameter: unknown
    }
}
