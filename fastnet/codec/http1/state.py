"""The HTTP/1.1 connection's state machine, shared by server and client.

h11's model: each side (CLIENT, SERVER) has a state; an event a side sends
or receives moves it by one table, :data:`TRANSITIONS`, and a pair not in
the table is an error that sticks. A request moves both sides (the server
now owes a response). Once both sides are DONE the cycle ends: both go back
to IDLE when the connection is kept alive, to MUST_CLOSE otherwise.
"""
from __future__ import annotations

from typing import Final


class Role:
    """Who sends the event. (Plain str constants, not enum members: an
    Enum member's hash is a Python call, and the table is looked up several
    times per request.)"""

    CLIENT: Final = "client"
    SERVER: Final = "server"


class State:
    """One side's state in the current request/response cycle."""

    IDLE = "idle"                    # nothing of this cycle sent yet
    SEND_RESPONSE = "send_response"  # server: a request arrived, its response is owed
    SEND_BODY = "send_body"          # the head is sent, the body is going out
    DONE = "done"                    # this side's message is complete
    MUST_CLOSE = "must_close"        # done, and the connection is not kept alive
    CLOSED = "closed"                # this side closed its half
    ERROR = "error"                  # a transition not in the table happened


class Event:
    """What a side does."""

    REQUEST = "request"              # a request head
    INFORMATIONAL = "informational"  # a 1xx response (100 Continue)
    RESPONSE = "response"            # a final response head
    DATA = "data"                    # body bytes
    END = "end"                      # the end of a message
    CLOSE = "close"                  # this side closes


_C, _S = Role.CLIENT, Role.SERVER

#: (role, its state, event) -> its new state. Nothing else is allowed.
TRANSITIONS: dict[tuple[str, str, str], str] = {
    (_C, State.IDLE, Event.REQUEST): State.SEND_BODY,
    (_C, State.SEND_BODY, Event.DATA): State.SEND_BODY,
    (_C, State.SEND_BODY, Event.END): State.DONE,
    (_S, State.IDLE, Event.REQUEST): State.SEND_RESPONSE,  # the client's request
    (_S, State.SEND_RESPONSE, Event.INFORMATIONAL): State.SEND_RESPONSE,
    (_S, State.SEND_RESPONSE, Event.RESPONSE): State.SEND_BODY,
    (_S, State.SEND_BODY, Event.DATA): State.SEND_BODY,
    (_S, State.SEND_BODY, Event.END): State.DONE,
    **{(role, state, Event.CLOSE): State.CLOSED
       for role in (_C, _S) for state in (State.IDLE, State.DONE, State.MUST_CLOSE, State.CLOSED)},
}


class ConnectionState:
    """Both sides' states for one connection. ``process(role, event)``
    applies one event (a REQUEST moves the server too); ``keep_alive`` goes
    False once either side says ``Connection: close`` (or speaks HTTP/1.0
    without keep-alive), and the cycle then ends in MUST_CLOSE."""

    def __init__(self) -> None:
        self.states = {Role.CLIENT: State.IDLE, Role.SERVER: State.IDLE}
        self.keep_alive = True

    def process(self, role: str, event: str) -> None:
        """Apply ``event`` sent by ``role``; ValueError (the local caller's
        misuse) for a pair the table does not have, and that side stays ERROR."""
        states = self.states
        new = self._move(role, event)
        if event == Event.REQUEST:
            self._move(Role.SERVER, event)
        elif new == State.DONE:
            if not self.keep_alive:
                states[role] = State.MUST_CLOSE
            elif states[Role.CLIENT] == State.DONE and states[Role.SERVER] == State.DONE:
                states[Role.CLIENT] = states[Role.SERVER] = State.IDLE

    def _move(self, role: str, event: str) -> str:
        state = self.states[role]
        new = TRANSITIONS.get((role, state, event))
        if new is None:
            self.states[role] = State.ERROR
            raise ValueError(f"{role} cannot send {event} in state {state}")
        self.states[role] = new
        return new

    def no_keep_alive(self) -> None:
        """The connection ends with this cycle."""
        self.keep_alive = False
        for side, state in self.states.items():
            if state == State.DONE:
                self.states[side] = State.MUST_CLOSE

    @property
    def client(self) -> str:
        """The client side's state."""
        return self.states[Role.CLIENT]

    @property
    def server(self) -> str:
        """The server side's state."""
        return self.states[Role.SERVER]
