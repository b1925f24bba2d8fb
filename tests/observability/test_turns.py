"""TurnQueue: what is added in one event-loop turn is handed over together, in order, once."""

from __future__ import annotations

import asyncio
import threading

from restpredict.observability.turns import TurnQueue


def queue() -> tuple[TurnQueue[int], list[list[int]]]:
    drained: list[list[int]] = []
    return TurnQueue(drained.append), drained


def test_items_of_one_turn_are_drained_together_at_its_end() -> None:
    turns, drained = queue()

    async def two_turns() -> list[list[int]]:
        for i in range(3):
            turns.add(i)
        seen = list(drained)  # the turn is not over
        await asyncio.sleep(0)
        turns.add(3)
        await asyncio.sleep(0)
        return seen

    assert asyncio.run(two_turns()) == []
    assert drained == [[0, 1, 2], [3]]


def test_an_item_added_off_the_loop_is_drained_at_once_after_pending_ones() -> None:
    turns, drained = queue()

    async def mixed() -> None:
        turns.add(1)
        await asyncio.to_thread(turns.add, 2)

    asyncio.run(mixed())
    turns.add(3)
    assert drained == [[1, 2], [3]]


def test_items_left_by_a_closed_loop_go_with_the_next_turn_of_another() -> None:
    turns, drained = queue()
    loop = asyncio.new_event_loop()

    loop.call_soon(turns.add, 1)
    loop.call_soon(loop.stop)  # the loop stops before the end-of-turn call runs
    loop.run_forever()
    loop.close()
    assert drained == []

    async def next_turn() -> None:
        turns.add(2)
        await asyncio.sleep(0)

    asyncio.run(next_turn())
    assert drained == [[1, 2]]


def test_flush_drains_now_under_the_lock() -> None:
    lock = threading.Lock()
    held: list[bool] = []
    turns: TurnQueue[int] = TurnQueue(lambda items: held.append(lock.locked()), lock=lock)

    async def pending_then_flush() -> int:
        turns.add(1)
        pending = len(turns)
        turns.flush()
        turns.flush()  # nothing left: nothing drained
        return pending

    assert asyncio.run(pending_then_flush()) == 1
    assert held == [True]
