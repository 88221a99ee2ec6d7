from django.urls import path

from leads import simulator

app_name = "simulator"

urlpatterns = [
    path("", simulator.page, name="page"),
    path("thread/", simulator.thread, name="thread"),
    path("call/", simulator.call_start, name="call-start"),
    path("call/ring-out/", simulator.call_ring_out, name="call-ring-out"),
    path("call/answer/", simulator.call_answer, name="call-answer"),
    path("call/hang-up/", simulator.call_hang_up, name="call-hang-up"),
    path("text/", simulator.text_send, name="text-send"),
]
